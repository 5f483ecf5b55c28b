"""Teardown: plan what envbuild manages for an environment, then remove it in dependency order.

AWS refuses deletions out of order: a Cloud Map service with registered instances and a namespace
with services fail with ResourceInUse (API_DeleteService, API_DeleteNamespace); ECS deletes a
service only once it is scaled to 0 (API_DeleteService). So the order is: ECS services scaled to
0 and their tasks stopped (ECS deregisters them from Cloud Map) -> ECS services deleted and
INACTIVE -> remaining instances deregistered (operations) -> Cloud Map services deleted ->
namespace deleted (operation, which also deletes its hosted zone) -> optionally log groups and
task definition revisions.

Every function removes only what the plan names and skips what is already gone, so each step is
safe to retry and a plan can be run twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from envbuild_lambda.errors import (
    ACCESS_DENIED_CODES,
    CloudMapOperationFailed,
    InvalidPlan,
    ResourceNotFound,
    aws_errors,
    error_code,
    map_client_error,
)
from envbuild_lambda.parallel import pmap
from envbuild_lambda.removal import KeptResource, NamespaceRef, Progress, RemovalPlan, short
from envbuild_lambda.spec import family_prefix, is_managed, log_group_prefix
from envbuild_lambda.state import Poll
from envbuild_lambda.steps import autoscaling, outputs
from envbuild_lambda.steps.desired import registry_arn
from envbuild_lambda.steps.diff import short_task_definition
from envbuild_lambda.steps.namespace import cloudmap_tags, find_namespace
from envbuild_lambda.steps.record import EnvironmentRecord, cluster_name
from envbuild_lambda.steps.registries import existing_registries
from envbuild_lambda.steps.services import chunks, describe_services, ecs_tags, list_instances
from envbuild_lambda.steps.task_definitions import log_group_tags
from envbuild_lambda.steps.verify import DESCRIBE_TASKS_BATCH

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import ServiceTypeDef

    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.settings import PollSchedule
    from envbuild_lambda.spec import EnvironmentSpec


#: Error codes that mean "already gone": the step skips the resource.
GONE_CODES = frozenset(
    {
        "ServiceNotFound",  # Cloud Map service
        "InstanceNotFound",
        "NamespaceNotFound",
        "ServiceNotFoundException",  # ECS
        "ServiceNotActiveException",  # ECS: DRAINING or INACTIVE already
        "ResourceNotFoundException",  # CloudWatch Logs
    }
)


def _gone(error: ClientError) -> bool:
    return error_code(error) in GONE_CODES


def _gone_after(error: ClientError, exists: Callable[[], bool]) -> bool:
    """Already gone? A not-found code says so; so does AccessDenied on a resource that no longer
    exists: the delete permissions are conditioned on the resource's tags (docs/security.md), and
    IAM denies a request on a resource that has none, e.g. one deleted by the lost first attempt
    of a retried step. Any other AccessDenied stays an error."""
    if _gone(error):
        return True
    return error_code(error) in ACCESS_DENIED_CODES and not exists()


def _exists(read: Callable[[], object]) -> bool:
    try:
        read()
    except ClientError as error:
        if _gone(error):
            return False
        raise map_client_error(error, "checking whether a resource still exists") from error
    return True


# ---------------------------------------------------------------------------------------------
# Plan: discover by tags


def ecs_services_in_cluster(clients: Clients, cluster: str) -> dict[str, ServiceTypeDef] | None:
    """Every service of the cluster with its tags; None if the cluster does not exist."""
    try:
        pages = clients.ecs.get_paginator("list_services").paginate(cluster=cluster)
        arns = [arn for page in pages for arn in page["serviceArns"]]
    except ClientError as error:
        if error_code(error) == "ClusterNotFoundException":
            return None
        raise map_client_error(error, f"ListServices in cluster {cluster}") from error
    names = [arn.rsplit("/", 1)[-1] for arn in arns]
    return describe_services(clients, cluster, names, tags=True)


def _plan_log_groups(
    clients: Clients,
    spec: EnvironmentSpec,
    record: EnvironmentRecord,
    max_workers: int,
    created_by: str | None = None,
) -> tuple[list[str], list[KeptResource]]:
    prefix = log_group_prefix(spec.environment)
    with aws_errors(f"DescribeLogGroups {prefix}"):
        pages = clients.logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix=prefix
        )
        groups = [group for page in pages for group in page["logGroups"]]

    def tags(group: Any) -> dict[str, str]:
        return log_group_tags(clients, group)

    spec_names = {service.log_group(spec.environment) for service in spec.services}
    remove: list[str] = []
    kept: list[KeptResource] = []
    for group, group_tags in zip(groups, pmap(tags, groups, max_workers), strict=True):
        name = group["logGroupName"]
        if not record.has("logGroups", name):
            continue  # another environment's or a user's: never ours to judge
        if is_managed(group_tags, spec.environment, created_by):
            remove.append(name)
        elif name in spec_names:
            kept.append(
                KeptResource(
                    type="logGroup", id=name, name=name, reason="existed before the build (adopted)"
                )
            )
    return remove, kept


def _plan_task_definitions(
    clients: Clients,
    spec: EnvironmentSpec,
    record: EnvironmentRecord,
    max_workers: int,
    created_by: str | None = None,
) -> tuple[list[str], list[KeptResource]]:
    prefix = family_prefix(spec.environment)
    with aws_errors(f"ListTaskDefinitionFamilies {prefix}"):
        pages = clients.ecs.get_paginator("list_task_definition_families").paginate(
            familyPrefix=prefix, status="ACTIVE"
        )
        families = [
            family
            for page in pages
            for family in page["families"]
            if record.has("families", family)  # recorded for this environment only
        ]
    arns: list[str] = []
    for family in families:
        with aws_errors(f"ListTaskDefinitions {family}"):
            pages_td = clients.ecs.get_paginator("list_task_definitions").paginate(
                familyPrefix=family, status="ACTIVE"
            )
            arns += [
                arn
                for page in pages_td
                for arn in page["taskDefinitionArns"]
                if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family
            ]

    def describe(arn: str) -> tuple[str, dict[str, str]]:
        with aws_errors(f"DescribeTaskDefinition {arn}"):
            answer = clients.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        definition = answer["taskDefinition"]
        tags = {tag.get("key", ""): tag.get("value", "") for tag in answer.get("tags", [])}
        return f"{definition['family']}:{definition['revision']}", tags

    spec_families = {service.family(spec.environment) for service in spec.services}
    remove: list[str] = []
    kept: list[KeptResource] = []
    for revision, tags in pmap(describe, sorted(set(arns)), max_workers):
        if is_managed(tags, spec.environment, created_by):
            remove.append(revision)
        elif revision.rsplit(":", 1)[0] in spec_families:
            kept.append(
                KeptResource(
                    type="taskDefinition",
                    id=revision,
                    name=revision,
                    reason="not tagged as managed by envbuild for this environment",
                )
            )
    return remove, kept


def _plan_parameters(
    clients: Clients, environment: str, max_workers: int, created_by: str | None
) -> tuple[list[str], list[KeptResource]]:
    """The build's output parameters under /envbuild/<environment>/: those tagged as managed for
    this environment (and build, for a rollback) are removed, any other one is kept."""
    path = outputs.parameter_path(environment)
    names = sorted(outputs.existing_parameters(clients, path))
    tags = pmap(lambda name: outputs.parameter_tags(clients, name), names, max_workers)
    managed = [
        n for n, t in zip(names, tags, strict=True) if is_managed(t, environment, created_by)
    ]
    kept = [
        KeptResource(
            type="parameter",
            id=name,
            name=name,
            reason="not tagged as managed by envbuild for this environment",
        )
        for name, t in zip(names, tags, strict=True)
        if not is_managed(t, environment, created_by) and created_by is None
    ]
    return managed, kept


def delete_parameters(clients: Clients, names: Iterable[str]) -> list[str]:
    """DeleteParameters, ten at a time (the API's limit); returns the names it deleted."""
    deleted: list[str] = []
    items = list(names)
    for start in range(0, len(items), 10):
        batch = items[start : start + 10]
        # Only those still there: a delete of one already gone (a retried step) would be denied,
        # the permission being conditioned on tags it no longer has (docs/ownership.md).
        with aws_errors(f"GetParameters {', '.join(batch)}"):
            missing = set(clients.ssm.get_parameters(Names=batch).get("InvalidParameters", []))
        batch = [name for name in batch if name not in missing]
        if not batch:
            continue
        with aws_errors(f"DeleteParameters {', '.join(batch)}"):
            answer = clients.ssm.delete_parameters(Names=batch)
        deleted += answer.get("DeletedParameters", [])
    return sorted(deleted)


def plan_teardown(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    record: EnvironmentRecord | None,
    *,
    delete_log_groups: bool,
    deregister_task_definitions: bool,
    max_workers: int,
    created_by: str | None = None,
) -> RemovalPlan:
    """What envbuild manages for ``spec.environment``: what its record lists *and* its tags mark
    (envbuild:environment, envbuild:managed=true; envbuild:build for a rollback) — ECS services
    in the recorded cluster, registries in the recorded namespace, the namespace, and on request
    its log groups and task definition revisions. The place (cluster, namespace, VPC) comes from
    the record; where the spec says otherwise, the plan notes it. What was adopted, and whatever
    an adopted resource still needs, is kept and reported."""
    env = spec.environment
    if record is None:  # never built (or torn down already): nothing is envbuild's here
        return RemovalPlan(
            environment=env,
            notes=[f"no environment record for {env}: envbuild manages nothing under that name"],
        )
    notes = [f"{difference}; the record was followed" for difference in record.differences(spec)]
    cluster = record.cluster or spec.cluster
    kept: list[KeptResource] = []

    # Cloud Map: the recorded namespace in the recorded VPC, and its recorded registries.
    namespace = (
        find_namespace(clients, record.namespace_name, record.vpc_id)
        if record.namespace_name and record.vpc_id
        else None
    )
    registries: dict[str, str] = {}  # id -> name, managed
    foreign: dict[str, str] = {}  # id -> name, not managed by this environment
    found: dict[str, str] = {}
    if namespace is not None and namespace.id and namespace.arn:
        found = existing_registries(clients, namespace.id)
        ids = sorted(found.values())
        all_tags = pmap(
            lambda registry_id: cloudmap_tags(clients, registry_arn(caller, registry_id)),
            ids,
            max_workers,
        )
        names = {registry_id: name for name, registry_id in found.items()}
        for registry_id, tags in zip(ids, all_tags, strict=True):
            ours = record.has("registries", names[registry_id]) and is_managed(
                tags, env, created_by
            )
            target = registries if ours else foreign
            target[registry_id] = names[registry_id]

    # ECS: the recorded cluster's services that the record lists and the tags mark.
    in_cluster = ecs_services_in_cluster(clients, cluster)
    if in_cluster is None:
        if record.names.get("ecsServices") and not created_by:
            raise ResourceNotFound(
                f"cluster {cluster}, recorded for environment {env}, does not exist: the"
                f" record lists ECS services {short(sorted(record.names['ecsServices']))} there."
                " A missing cluster is never taken for an empty one; if you deleted the cluster"
                " (ECS deletes a cluster only once its services are gone), create an empty"
                " cluster of that name and run the teardown again"
            )
        in_cluster = {}
    ecs_services: list[str] = []
    spec_ecs_names = {service.ecs_service_name for service in spec.services}
    managed_arns = {registry_arn(caller, registry_id) for registry_id in registries}
    for name, service in sorted(in_cluster.items()):
        if service.get("status") == "INACTIVE":
            continue
        if record.has("ecsServices", name) and is_managed(ecs_tags(service), env, created_by):
            ecs_services.append(name)
            continue
        attached = {r.get("registryArn", "") for r in service.get("serviceRegistries", [])}
        needs = sorted(attached & managed_arns)
        if needs or name in spec_ecs_names:
            kept.append(
                KeptResource(
                    type="ecsService",
                    id=str(service.get("serviceArn", name)),
                    name=name,
                    reason="not recorded and tagged as managed by envbuild for this environment"
                    " (adopted)",
                )
            )
        for arn in needs:  # an adopted ECS service still registers its tasks there
            registry_id = arn.rsplit("/", 1)[-1]
            foreign[registry_id] = registries.pop(registry_id)
            kept.append(
                KeptResource(
                    type="registry",
                    id=registry_id,
                    name=foreign[registry_id],
                    reason=f"ECS service {name}, which envbuild does not manage, is attached to it",
                )
            )

    # A registry that holds an instance envbuild did not register (someone registered it by
    # hand, or another cluster's service) is not deleted: its instances are not ours to remove.
    recorded_cluster = cluster_name(cluster)

    def strangers(item: tuple[str, str]) -> list[str]:
        registry_id, name = item
        return [
            f"{i.id} ({i.ipv4 or 'no IPv4'})"
            for i in list_instances(clients, registry_id)
            if not (
                record.has("instances", f"{name}/{i.id}")
                or (
                    i.attributes.get("ECS_CLUSTER_NAME") == recorded_cluster
                    and record.has("ecsServices", i.attributes.get("ECS_SERVICE_NAME", ""))
                )
            )
        ]

    for (registry_id, name), others in zip(
        list(registries.items()),
        pmap(strangers, list(registries.items()), max_workers),
        strict=True,
    ):
        if others:
            foreign[registry_id] = registries.pop(registry_id)
            kept.append(
                KeptResource(
                    type="registry",
                    id=registry_id,
                    name=name,
                    reason="holds instance(s) envbuild did not register: "
                    + short(others)
                    + "; deregister them, then run the teardown again",
                )
            )

    spec_registry_names = {service.name for service in spec.services}
    namespace_ref: NamespaceRef | None = None
    namespace_stays = False  # ours, but kept: it still holds Cloud Map services of others
    if namespace is not None and namespace.id and namespace.arn:
        namespace_managed = is_managed(cloudmap_tags(clients, namespace.arn), env, created_by)
        for registry_id, name in sorted(foreign.items()):
            already = any(k.type == "registry" and k.id == registry_id for k in kept)
            if not already and (namespace_managed or name in spec_registry_names):
                kept.append(
                    KeptResource(
                        type="registry",
                        id=registry_id,
                        name=name,
                        reason="not recorded and tagged as managed by envbuild for this"
                        " environment (adopted)",
                    )
                )
        if not namespace_managed:
            kept.append(
                KeptResource(
                    type="namespace",
                    id=namespace.id,
                    name=namespace.name,
                    reason="existed before the build (adopted): not tagged as managed by envbuild"
                    f" for environment {env}",
                )
            )
        elif foreign:
            namespace_stays = True
            kept.append(
                KeptResource(
                    type="namespace",
                    id=namespace.id,
                    name=namespace.name,
                    reason="still holds Cloud Map services envbuild does not manage: "
                    + short(sorted(foreign.values())),
                )
            )
        else:
            namespace_ref = NamespaceRef(id=namespace.id, name=namespace.name)

    log_groups: list[str] = []
    if delete_log_groups:
        log_groups, kept_groups = _plan_log_groups(clients, spec, record, max_workers, created_by)
        kept += kept_groups
    task_definitions: list[str] = []
    if deregister_task_definitions:
        task_definitions, kept_revisions = _plan_task_definitions(
            clients, spec, record, max_workers, created_by
        )
        kept += kept_revisions

    parameters, kept_parameters = _plan_parameters(clients, env, max_workers, created_by)
    kept += kept_parameters

    return RemovalPlan(
        environment=env,
        cluster=cluster,
        ecsServices=ecs_services,
        registries=sorted(registries),
        namespace=namespace_ref,
        logGroups=log_groups,
        taskDefinitions=task_definitions,
        parameters=parameters,
        kept=kept,
        registryNames=dict(registries),
        forget={}
        if created_by
        else _forget(record, kept, namespace_stays, delete_log_groups, deregister_task_definitions),
        notes=notes,
    )


def _forget(
    record: EnvironmentRecord,
    kept: list[KeptResource],
    namespace_stays: bool,
    log_groups: bool,
    task_definitions: bool,
) -> dict[str, list[str]]:
    """After a whole-environment teardown, the record keeps only the registries it keeps on
    purpose (an adopted ECS service is attached), and the log groups and families it was not asked
    to remove; the rest is removed or was never made."""
    stays = {k.name for k in kept if k.type == "registry"}
    forget = {
        "ecsServices": set(record.names.get("ecsServices", ())),
        "registries": set(record.names.get("registries", ())) - stays,
        "logGroups": set(record.names.get("logGroups", ())) if log_groups else set(),
        "families": set(record.names.get("families", ())) if task_definitions else set(),
        "namespace": {record.namespace_name or ""} if not namespace_stays else set(),
    }
    return {kind: sorted(names) for kind, names in forget.items() if names}


def verify_plan(
    clients: Clients,
    caller: Caller,
    plan: RemovalPlan,
    record: EnvironmentRecord | None,
    created_by: str | None = None,
) -> RemovalPlan:
    """A removal plan given as input (a prune's, or anyone's) may name only what the environment
    record lists and the tags mark as the environment's (created by ``created_by``, if given).
    InvalidPlan names everything else, before anything is changed. Resources already gone pass
    (each removal step skips them). Returns the plan with its registries' names filled in."""
    env = plan.environment or ""
    if record is None:
        raise InvalidPlan(
            f"plan.environment: there is no environment record for {env!r}: a removal plan may"
            " name only resources envbuild recorded for that environment"
        )
    problems: list[str] = []

    def ours(tags: dict[str, str]) -> bool:
        return is_managed(tags, env, created_by)

    if plan.ecsServices:
        if cluster_name(plan.cluster or "") != cluster_name(record.cluster or ""):
            problems.append(
                f"plan.cluster: {plan.cluster} is not the recorded cluster {record.cluster}"
            )
        else:
            described = describe_services(clients, plan.cluster or "", plan.ecsServices, tags=True)
            for name in plan.ecsServices:
                service = described.get(name)
                if not record.has("ecsServices", name):
                    problems.append(f"plan.ecsServices: {name} is not in the environment record")
                elif (
                    service is not None
                    and service.get("status") != "INACTIVE"
                    and not ours(ecs_tags(service))
                ):
                    problems.append(
                        f"plan.ecsServices: {name} is not tagged as managed by envbuild"
                        f" for environment {env}"
                    )
    recorded_ns = (
        find_namespace(clients, record.namespace_name, record.vpc_id)
        if record.namespace_name and record.vpc_id
        else None
    )
    names: dict[str, str] = {}
    for registry_id in plan.registries:
        try:
            registry = clients.servicediscovery.get_service(Id=registry_id)["Service"]
        except ClientError as error:
            if _gone(error):
                continue
            raise map_client_error(error, f"GetService (Cloud Map) {registry_id}") from error
        name = registry.get("Name", "")
        names[registry_id] = name
        if recorded_ns is None or registry.get("NamespaceId") != recorded_ns.id:
            problems.append(
                f"plan.registries: {registry_id} ({name}) is not in the recorded namespace"
                f" {record.namespace_name}"
            )
        elif not record.has("registries", name):
            problems.append(f"plan.registries: {registry_id} ({name}) is not in the record")
        elif not ours(cloudmap_tags(clients, registry_arn(caller, registry_id))):
            problems.append(
                f"plan.registries: {registry_id} ({name}) is not tagged as managed by envbuild"
                f" for environment {env}"
            )
    if plan.namespace is not None:
        if recorded_ns is None or recorded_ns.id != plan.namespace.id:
            problems.append(
                f"plan.namespace: {plan.namespace.id} is not the recorded namespace"
                f" {record.namespace_name} in {record.vpc_id}"
            )
        elif recorded_ns.arn and not ours(cloudmap_tags(clients, recorded_ns.arn)):
            problems.append(
                f"plan.namespace: {plan.namespace.id} is not tagged as managed by envbuild for"
                f" environment {env}"
            )
    for group in plan.logGroups:
        if not record.has("logGroups", group):
            problems.append(f"plan.logGroups: {group} is not in the environment record")
            continue
        arn = caller.arn("logs", f"log-group:{group}")
        try:
            tags = dict(clients.logs.list_tags_for_resource(resourceArn=arn).get("tags", {}))
        except ClientError as error:
            if _gone(error):
                continue
            raise map_client_error(error, f"ListTagsForResource {group}") from error
        if not ours(tags):
            problems.append(f"plan.logGroups: {group} is not tagged as managed by envbuild")
    for revision in plan.taskDefinitions:
        family = revision.rsplit(":", 1)[0]
        if not record.has("families", family):
            problems.append(f"plan.taskDefinitions: {revision} is not of a recorded family")
            continue
        try:
            answer = clients.ecs.describe_task_definition(taskDefinition=revision, include=["TAGS"])
        except ClientError as error:
            if error_code(error) == "ClientException":  # no such revision
                continue
            raise map_client_error(error, f"DescribeTaskDefinition {revision}") from error
        tags = {tag.get("key", ""): tag.get("value", "") for tag in answer.get("tags", [])}
        if not ours(tags):
            problems.append(f"plan.taskDefinitions: {revision} is not tagged as managed")
    path = outputs.parameter_path(env)
    for parameter in plan.parameters:
        if not parameter.startswith(path):
            problems.append(f"plan.parameters: {parameter} is not under {path}")
            continue
        try:
            answer = clients.ssm.list_tags_for_resource(
                ResourceType="Parameter", ResourceId=parameter
            )
        except ClientError as error:
            if error_code(error) in ("InvalidResourceId", "ParameterNotFound"):
                continue  # already gone
            raise map_client_error(error, f"ListTagsForResource (SSM) {parameter}") from error
        tags = {t["Key"]: t["Value"] for t in answer.get("TagList", [])}
        if not ours(tags):
            problems.append(f"plan.parameters: {parameter} is not tagged as managed")
    if problems:
        raise InvalidPlan(
            f"{len(problems)} resource(s) in the removal plan are not environment {env}'s"
            " (recorded and tagged); nothing was removed: " + "; ".join(problems[:30])
        )
    return plan.model_copy(update={"registryNames": names})


# ---------------------------------------------------------------------------------------------
# ECS services: scale to 0, wait for the tasks to stop and leave Cloud Map


def _ecs_instances(clients: Clients, registry_id: str, ecs_service: str) -> int:
    """Instances ECS registered for ``ecs_service`` that are still in the registry."""
    try:
        pages = clients.servicediscovery.get_paginator("list_instances").paginate(
            ServiceId=registry_id
        )
        return sum(
            1
            for page in pages
            for instance in page["Instances"]
            if instance.get("Attributes", {}).get("ECS_SERVICE_NAME") == ecs_service
        )
    except ClientError as error:
        if _gone(error):
            return 0
        raise map_client_error(error, f"ListInstances {registry_id}") from error


def _live_tasks(clients: Clients, cluster: str, ecs_service: str) -> int:
    """Tasks of the service not yet STOPPED (desired RUNNING, or stopping)."""
    live = 0
    for desired in ("RUNNING", "STOPPED"):
        with aws_errors(f"ListTasks {ecs_service}"):
            pages = clients.ecs.get_paginator("list_tasks").paginate(
                cluster=cluster, serviceName=ecs_service, desiredStatus=desired
            )
            arns = [arn for page in pages for arn in page["taskArns"]]
        if desired == "RUNNING":
            live += len(arns)
            continue
        for batch in chunks(arns, DESCRIBE_TASKS_BATCH):
            with aws_errors(f"DescribeTasks {ecs_service}"):
                tasks = clients.ecs.describe_tasks(cluster=cluster, tasks=list(batch))["tasks"]
            live += sum(1 for task in tasks if task.get("lastStatus") != "STOPPED")
    return live


def _tasks_reason(clients: Clients, cluster: str, service: ServiceTypeDef) -> str | None:
    name = service["serviceName"]
    if service.get("status") == "INACTIVE":
        return None
    tasks = _live_tasks(clients, cluster, name)
    registered = sum(
        _ecs_instances(clients, str(r.get("registryArn", "")).rsplit("/", 1)[-1], name)
        for r in service.get("serviceRegistries", [])
    )
    if tasks == 0 and registered == 0:
        return None
    return f"{name}: {tasks} task(s) not yet stopped, {registered} still registered in Cloud Map"


def check_tasks_stopped(
    clients: Clients,
    plan: RemovalPlan,
    progress: Progress,
    schedule: PollSchedule,
    max_workers: int,
) -> Progress:
    """Done when no service of ``progress.pending`` has a task left that is not STOPPED or an
    instance left in Cloud Map."""
    cluster = plan.cluster or ""
    described = describe_services(clients, cluster, progress.pending)
    current = [described[name] for name in progress.pending if name in described]
    reasons = [
        reason
        for reason in pmap(lambda s: _tasks_reason(clients, cluster, s), current, max_workers)
        if reason
    ]
    pending = [reason.split(":", 1)[0] for reason in reasons]
    poll = progress.poll.next(schedule)
    if not reasons:
        return progress.model_copy(
            update={"done": True, "pending": [], "poll": poll, "message": "all tasks stopped"}
        )
    return progress.model_copy(
        update={
            "done": False,
            "pending": pending,
            "poll": poll,
            "message": f"tasks of {len(reasons)} ECS service(s) had not stopped after"
            f" {poll.attempt} checks (about {schedule.budget_seconds()} s allowed): "
            + "; ".join(reasons[:20]),
        }
    )


def _deregister_scalable_targets(
    clients: Clients, cluster: str, names: list[str], max_workers: int
) -> None:
    """Deregister the scalable targets of these ECS services (the plan's: envbuild's own)."""
    ids = {name: autoscaling.resource_id(cluster, name) for name in names}
    scaled = autoscaling.existing_targets(clients, list(ids.values())) if ids else set()
    pmap(
        lambda name: autoscaling.deregister(clients, ids[name]),
        [name for name in names if ids[name] in scaled],
        max_workers,
    )


def scale_to_zero(
    clients: Clients, plan: RemovalPlan, schedule: PollSchedule, max_workers: int
) -> Progress:
    """UpdateService desiredCount=0 for each ACTIVE service of the plan, then a first check."""
    cluster = plan.cluster or ""
    described = describe_services(clients, cluster, plan.ecsServices)
    live = [
        name
        for name in plan.ecsServices
        if name in described and described[name].get("status") != "INACTIVE"
    ]

    # First the scalable targets (the spec's autoscaling): a scaler left on would bring the
    # count back up to its minimum.
    _deregister_scalable_targets(
        clients, cluster, [n for n in live if described[n].get("status") == "ACTIVE"], max_workers
    )

    def scale(name: str) -> None:
        service = described[name]
        if service.get("status") != "ACTIVE" or service.get("desiredCount", 0) == 0:
            return
        try:
            clients.ecs.update_service(cluster=cluster, service=name, desiredCount=0)
        except ClientError as error:
            if not _gone(error):
                raise map_client_error(
                    error, f"UpdateService {name} desiredCount=0 in cluster {cluster}"
                ) from error

    pmap(scale, live, max_workers)
    start = Progress(done=False, poll=Poll.start(schedule), pending=live)
    first = check_tasks_stopped(clients, plan, start, schedule, max_workers)
    # The first check is part of this step: the poll starts after it.
    return first.model_copy(update={"poll": Poll.start(schedule)})


# ---------------------------------------------------------------------------------------------
# ECS services: delete, wait until INACTIVE


def check_services_inactive(
    clients: Clients, plan: RemovalPlan, progress: Progress, schedule: PollSchedule
) -> Progress:
    cluster = plan.cluster or ""
    described = describe_services(clients, cluster, progress.pending)
    pending = [
        name
        for name in progress.pending
        if name in described and described[name].get("status") != "INACTIVE"
    ]
    poll = progress.poll.next(schedule)
    message = (
        "all deleted ECS services are INACTIVE"
        if not pending
        else f"{len(pending)} ECS service(s) not INACTIVE after {poll.attempt} checks"
        f" (about {schedule.budget_seconds()} s allowed): "
        + "; ".join(f"{name}: {described[name].get('status')}" for name in pending[:20])
    )
    return progress.model_copy(
        update={"done": not pending, "pending": pending, "poll": poll, "message": message}
    )


def delete_ecs_services(
    clients: Clients, plan: RemovalPlan, schedule: PollSchedule, max_workers: int
) -> Progress:
    cluster = plan.cluster or ""
    described = describe_services(clients, cluster, plan.ecsServices)
    active = [
        name for name in plan.ecsServices if described.get(name, {}).get("status") == "ACTIVE"
    ]
    # A scalable target (the spec's autoscaling) is deregistered before its service is deleted
    # (normally gone already: scale_to_zero deregistered it).
    _deregister_scalable_targets(clients, cluster, active, max_workers)

    def delete(name: str) -> None:
        try:
            clients.ecs.delete_service(cluster=cluster, service=name)
        except ClientError as error:
            if not _gone(error):
                raise map_client_error(
                    error, f"DeleteService (ECS) {name} in cluster {cluster}"
                ) from error

    pmap(delete, active, max_workers)
    waiting = [
        name
        for name in plan.ecsServices
        if name in described and described[name].get("status") != "INACTIVE"
    ]
    start = Progress(done=False, poll=Poll.start(schedule), removed=active, pending=waiting)
    first = check_services_inactive(clients, plan, start, schedule)
    return first.model_copy(update={"poll": Poll.start(schedule)})


# ---------------------------------------------------------------------------------------------
# Cloud Map: instances, operations, services, namespace


def _instance_ids(clients: Clients, registry_id: str) -> list[str]:
    try:
        pages = clients.servicediscovery.get_paginator("list_instances").paginate(
            ServiceId=registry_id
        )
        return [instance["Id"] for page in pages for instance in page["Instances"]]
    except ClientError as error:
        if _gone(error):
            return []
        raise map_client_error(error, f"ListInstances {registry_id}") from error


def deregister_instances(
    clients: Clients, plan: RemovalPlan, schedule: PollSchedule, max_workers: int
) -> Progress:
    """DeregisterInstance for every instance still in the plan's registries (static ones too)."""
    targets = [
        (registry_id, instance_id)
        for registry_id, ids in zip(
            plan.registries,
            pmap(lambda r: _instance_ids(clients, r), plan.registries, max_workers),
            strict=True,
        )
        for instance_id in ids
    ]

    def deregister(target: tuple[str, str]) -> str | None:
        registry_id, instance_id = target
        try:
            return clients.servicediscovery.deregister_instance(
                ServiceId=registry_id, InstanceId=instance_id
            )["OperationId"]
        except ClientError as error:
            if _gone_after(
                error,
                lambda: _exists(
                    lambda: clients.servicediscovery.get_instance(
                        ServiceId=registry_id, InstanceId=instance_id
                    )
                ),
            ):
                return None
            raise map_client_error(
                error, f"DeregisterInstance {instance_id} from {registry_id}"
            ) from error

    operations = pmap(deregister, targets, max_workers)
    removed = [f"{r}/{i}" for (r, i), op in zip(targets, operations, strict=True) if op]
    pending = [op for op in operations if op]
    return Progress(
        done=not pending,
        poll=Poll.start(schedule),
        removed=removed,
        pending=pending,
        message=f"{len(pending)} DeregisterInstance operation(s) submitted",
    )


def check_operations(
    clients: Clients, progress: Progress, schedule: PollSchedule, max_workers: int
) -> Progress:
    """One check of the pending Cloud Map operations: SUCCESS ones leave the list, FAIL raises."""

    def status(operation_id: str) -> tuple[str, dict[str, Any]]:
        with aws_errors(f"GetOperation {operation_id}"):
            operation = clients.servicediscovery.get_operation(OperationId=operation_id)
        return operation_id, dict(operation["Operation"])

    answers = pmap(status, progress.pending, max_workers)
    failed = [(op_id, op) for op_id, op in answers if op.get("Status") == "FAIL"]
    if failed:
        raise CloudMapOperationFailed(
            "; ".join(
                f"Cloud Map operation {op_id} ({op.get('Type')} {op.get('Targets')}) FAILED:"
                f" {op.get('ErrorCode', 'UNKNOWN')}: {op.get('ErrorMessage', '')}"
                for op_id, op in failed[:10]
            )
        )
    pending = [op_id for op_id, op in answers if op.get("Status") != "SUCCESS"]
    poll = progress.poll.next(schedule)
    message = (
        "all Cloud Map operations succeeded"
        if not pending
        else f"{len(pending)} Cloud Map operation(s) not finished after {poll.attempt} checks"
        f" (about {schedule.budget_seconds()} s allowed): {short(pending, 10)}"
    )
    return progress.model_copy(
        update={"done": not pending, "pending": pending, "poll": poll, "message": message}
    )


def delete_registries(
    clients: Clients, plan: RemovalPlan, schedule: PollSchedule, max_workers: int
) -> Progress:
    """DeleteService (Cloud Map) for each registry of the plan; fails with ResourceInUse if one
    still has instances."""

    def delete(registry_id: str) -> bool:
        try:
            clients.servicediscovery.delete_service(Id=registry_id)
        except ClientError as error:
            if _gone_after(
                error,
                lambda: _exists(lambda: clients.servicediscovery.get_service(Id=registry_id)),
            ):
                return False
            raise map_client_error(error, f"DeleteService (Cloud Map) {registry_id}") from error
        return True

    deleted = pmap(delete, plan.registries, max_workers)
    removed = [r for r, done in zip(plan.registries, deleted, strict=True) if done]
    return Progress(
        done=True,
        poll=Poll.start(schedule),
        removed=removed,
        message=f"{len(removed)} Cloud Map service(s) deleted",
    )


def delete_namespace(clients: Clients, plan: RemovalPlan, schedule: PollSchedule) -> Progress:
    """DeleteNamespace (asynchronous; fails with ResourceInUse while it holds services)."""
    if plan.namespace is None:
        return Progress(done=True, poll=Poll.start(schedule), message="no namespace to delete")
    namespace = plan.namespace
    try:
        operation_id = clients.servicediscovery.delete_namespace(Id=namespace.id)["OperationId"]
    except ClientError as error:
        if _gone_after(
            error, lambda: _exists(lambda: clients.servicediscovery.get_namespace(Id=namespace.id))
        ):
            return Progress(
                done=True,
                poll=Poll.start(schedule),
                message=f"namespace {namespace.name} ({namespace.id}) was already deleted",
            )
        raise map_client_error(
            error, f"DeleteNamespace {namespace.name} ({namespace.id})"
        ) from error
    return Progress(
        done=False,
        poll=Poll.start(schedule),
        removed=[namespace.id],
        pending=[operation_id],
        message=f"deleting namespace {namespace.name}: Cloud Map operation {operation_id}",
    )


# ---------------------------------------------------------------------------------------------
# Log groups and task definition revisions; the summary


def delete_log_groups(clients: Clients, names: Iterable[str], max_workers: int) -> list[str]:
    def exists(name: str) -> bool:
        with aws_errors(f"DescribeLogGroups {name}"):
            found = clients.logs.describe_log_groups(logGroupNamePrefix=name, limit=1)
        return any(g["logGroupName"] == name for g in found["logGroups"])

    def delete(name: str) -> bool:
        if not exists(name):  # gone already: a delete would be denied (no tags to match)
            return False
        try:
            clients.logs.delete_log_group(logGroupName=name)
        except ClientError as error:
            if _gone_after(error, lambda: exists(name)):
                return False
            raise map_client_error(error, f"DeleteLogGroup {name}") from error
        return True

    groups = list(names)
    return [g for g, done in zip(groups, pmap(delete, groups, max_workers), strict=True) if done]


def in_use(clients: Clients, cluster: str | None, revisions: Iterable[str]) -> set[str]:
    """The revisions an ACTIVE ECS service of ``cluster`` runs ("family:revision"): never
    deregistered (a rollback whose restore did not happen leaves them to the service)."""
    wanted = set(revisions)
    if not cluster or not wanted:
        return set()
    services = ecs_services_in_cluster(clients, cluster) or {}
    return {
        short_task_definition(str(service.get("taskDefinition", "")))
        for service in services.values()
        if service.get("status") == "ACTIVE"
    } & wanted


def deregister_task_definitions(
    clients: Clients, revisions: Iterable[str], max_workers: int
) -> list[str]:
    def deregister(revision: str) -> bool:
        try:
            status = clients.ecs.deregister_task_definition(taskDefinition=revision)[
                "taskDefinition"
            ].get("status")
        except ClientError as error:
            # ECS answers ClientException for a revision that does not exist.
            if _gone(error) or error_code(error) == "ClientException":
                return False
            raise map_client_error(error, f"DeregisterTaskDefinition {revision}") from error
        return status != "ACTIVE"

    items = list(revisions)
    return [r for r, done in zip(items, pmap(deregister, items, max_workers), strict=True) if done]


def gone_names(clients: Clients, plan: RemovalPlan) -> dict[str, list[str]]:
    """What the environment record may forget once the plan's removal succeeded: everything the
    plan removed (its steps each end with the resource gone), what the planner lets go (a
    whole-environment teardown), and the families the plan left without an ACTIVE revision."""
    families: list[str] = []
    for family in sorted({revision.rsplit(":", 1)[0] for revision in plan.taskDefinitions}):
        with aws_errors(f"ListTaskDefinitions {family}"):
            left = clients.ecs.list_task_definitions(
                familyPrefix=family, status="ACTIVE", maxResults=100
            )["taskDefinitionArns"]
        if not any(arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family for arn in left):
            families.append(family)
    names = {
        "ecsServices": plan.ecsServices,
        "registries": [plan.registryNames[r] for r in plan.registries if r in plan.registryNames],
        "logGroups": plan.logGroups,
        "families": families,
    }
    return {kind: sorted({*values, *plan.forget.get(kind, [])}) for kind, values in names.items()}


def summarize(
    plan: RemovalPlan,
    removed: dict[str, list[str]],
    log_groups: list[str],
    task_definitions: list[str],
    parameters: list[str] | None = None,
) -> dict[str, Any]:
    namespace = (
        plan.namespace.model_dump(mode="json")
        if plan.namespace and plan.namespace.id in removed.get("namespace", [])
        else None
    )
    summary: dict[str, Any] = {
        "environment": plan.environment,
        "removed": {
            "ecsServices": removed.get("ecsServices", []),
            "instances": removed.get("instances", []),
            "registries": removed.get("registries", []),
            "namespace": namespace,
            "logGroups": log_groups,
            "taskDefinitions": task_definitions,
            "parameters": parameters or [],
        },
        "kept": [k.model_dump(mode="json") for k in plan.kept],
        "notes": plan.notes,
    }
    counts = [
        f"{len(values)} {label}"
        for label, values in (
            ("ECS service(s)", summary["removed"]["ecsServices"]),
            ("instance(s)", summary["removed"]["instances"]),
            ("Cloud Map service(s)", summary["removed"]["registries"]),
            ("log group(s)", log_groups),
            ("task definition revision(s)", task_definitions),
            ("SSM parameter(s)", parameters or []),
        )
        if values
    ]
    if namespace:
        counts.append(f"namespace {namespace['name']}")
    found = bool(counts) or bool(plan.kept)
    summary["found"] = found
    summary["message"] = (
        ("removed " + ", ".join(counts) if counts else "removed nothing")
        + (f"; kept {len(plan.kept)}" if plan.kept else "")
        if found
        else f"nothing found for environment {plan.environment}: nothing to remove"
    )
    return summary
