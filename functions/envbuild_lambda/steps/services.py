"""ECS Fargate services attached to their Cloud Map registries, and their readiness."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from envbuild_lambda import pacing
from envbuild_lambda.errors import (
    CloudMapOperationFailed,
    DeploymentFailed,
    ServiceConflict,
    aws_errors,
)
from envbuild_lambda.pacing import RateLimiter, paced
from envbuild_lambda.parallel import pmap
from envbuild_lambda.spec import TAG_BUILD, is_managed
from envbuild_lambda.state import Poll, Restore, ServicesState
from envbuild_lambda.steps import desired, diff, record, retag
from envbuild_lambda.steps.desired import registry_arn
from envbuild_lambda.steps.diff import Change, short_task_definition

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import ServiceTypeDef

    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.settings import PollSchedule
    from envbuild_lambda.spec import EnvironmentSpec, Service
    from envbuild_lambda.steps.record import EnvironmentRecord

T = TypeVar("T")

#: DescribeServices takes at most 10 services per call.
DESCRIBE_BATCH = 10


def chunks[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def describe_services(
    clients: Clients, cluster: str, names: Iterable[str], *, tags: bool = False
) -> dict[str, ServiceTypeDef]:
    """ECS service name -> description, for the services that exist (any status); with their
    tags if ``tags``."""
    found: dict[str, ServiceTypeDef] = {}
    for batch in chunks(list(names), DESCRIBE_BATCH):
        with aws_errors(f"DescribeServices in cluster {cluster}"):
            response = (
                clients.ecs.describe_services(
                    cluster=cluster, services=list(batch), include=["TAGS"]
                )
                if tags
                else clients.ecs.describe_services(cluster=cluster, services=list(batch))
            )
        for service in response["services"]:
            found[service["serviceName"]] = service
    return found


def ecs_tags(service: ServiceTypeDef) -> dict[str, str]:
    return {tag.get("key", ""): tag.get("value", "") for tag in service.get("tags", [])}


def update_service(
    clients: Clients,
    spec: EnvironmentSpec,
    service: Service,
    fields: dict[str, Any],
    pace: RateLimiter | None = None,
) -> None:
    """UpdateService with the fields of the rendered service (desired.ecs_service) that the diff
    found different, and ``forceNewDeployment`` when asked (ECS starts a new deployment; Check
    Services waits for it to complete). Setting the same values again is harmless, so a
    throttled attempt may be repeated."""

    def update() -> None:
        with aws_errors(
            f"UpdateService (ECS) {service.ecs_service_name} in cluster {spec.cluster_name}"
        ):
            clients.ecs.update_service(
                cluster=spec.cluster, service=service.ecs_service_name, **desired.sent(fields)
            )

    paced(pace, update)


def create_service(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    service: Service,
    registry_id: str,
    task_definition: str,
    build: str | None = None,
    pace: RateLimiter | None = None,
) -> None:
    request = {
        **desired.create_only(spec, service),
        **desired.ecs_service(caller, spec, service, registry_id, task_definition),
    }

    def create() -> None:
        with aws_errors(
            f"CreateService (ECS) {service.ecs_service_name} in cluster {spec.cluster_name}"
        ):
            clients.ecs.create_service(
                **desired.sent(request),
                # With the registry: a service re-created after a prune or teardown (new
                # registry) is a new request, not an answer with the deleted one.
                clientToken=spec.request_token(
                    "ecs-service", spec.cluster_name, service.name, registry_id, max_length=36
                ),
                tags=desired.ecs_tags(desired.tags(spec, service, build)),
            )

    # CreateService is idempotent (clientToken): a throttled attempt may be repeated.
    paced(pace, create)


def _check_adoptable(
    current: ServiceTypeDef, service: Service, spec: EnvironmentSpec, wanted: str
) -> None:
    """An existing ECS service is used only if it is envbuild's for this environment and
    already answers for this registry (Preflight found any other; this is the last guard)."""
    if not is_managed(ecs_tags(current), spec.environment):
        raise ServiceConflict(
            f"ECS service {service.ecs_service_name} already exists in cluster {spec.cluster_name}"
            f" and is not envbuild's for environment {spec.environment}; envbuild does not modify"
            " services it did not create: use other service names or another cluster, or delete"
            " that service"
        )
    attached = [r.get("registryArn", "") for r in current.get("serviceRegistries", [])]
    if wanted not in attached:
        raise ServiceConflict(
            f"ECS service {service.ecs_service_name} already exists in cluster {spec.cluster_name}"
            f" attached to {', '.join(attached) or 'no Cloud Map registry'}, not to {wanted};"
            " envbuild does not modify services it did not create: use other service names or"
            " another cluster, or delete that service"
        )


@dataclass(frozen=True)
class Instance:
    """One instance of a Cloud Map service as a readiness check and the verification see it."""

    id: str
    ipv4: str | None
    attributes: dict[str, str]
    health: str = "UNKNOWN"


def list_instances(clients: Clients, registry_id: str) -> list[Instance]:
    with aws_errors(f"ListInstances {registry_id}"):
        pages = clients.servicediscovery.get_paginator("list_instances").paginate(
            ServiceId=registry_id
        )
        return [
            Instance(
                id=item["Id"],
                ipv4=item.get("Attributes", {}).get("AWS_INSTANCE_IPV4"),
                attributes=dict(item.get("Attributes", {})),
            )
            for page in pages
            for item in page["Instances"]
        ]


def health_statuses(clients: Clients, registry_id: str) -> dict[str, str]:
    """Instance id -> HEALTHY | UNHEALTHY | UNKNOWN (GetInstancesHealthStatus, every page)."""
    statuses: dict[str, str] = {}
    kwargs: dict[str, object] = {"ServiceId": registry_id, "MaxResults": 100}
    while True:
        with aws_errors(f"GetInstancesHealthStatus {registry_id}"):
            page = clients.servicediscovery.get_instances_health_status(**kwargs)  # type: ignore[arg-type]
        statuses.update(page.get("Status", {}))
        token = page.get("NextToken")
        if not token:
            return statuses
        kwargs["NextToken"] = token


def instances_with_health(clients: Clients, registry_id: str) -> list[Instance]:
    statuses = health_statuses(clients, registry_id)
    return [
        Instance(i.id, i.ipv4, i.attributes, statuses.get(i.id, "UNKNOWN"))
        for i in list_instances(clients, registry_id)
    ]


def create_or_adopt_services(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    registries: dict[str, str],
    task_definitions: dict[str, str],
    schedule: PollSchedule,
    max_workers: int,
    build: str | None = None,
    writes_per_second: int = 5,
    *,
    redeploy: bool = False,
    recorded_instances: frozenset[str] = frozenset(),
    started_at: float | None = None,
    recorded: EnvironmentRecord | None = None,
) -> tuple[ServicesState, list[Change]]:
    """Converge the spec's ECS services (diff.ecs_service_change): create the missing ones,
    UpdateService the fields that differ on those envbuild manages for this environment
    (forceNewDeployment when the last deployment FAILED, or with ``redeploy``), and the static
    instances (``converge_static_instances``). A service tagged with ``build`` was created by
    this build (steps/pipeline.py) and is reported so; when only those started, the first
    check's wait is shortened by the time since ``started_at`` (this step's start, on pacing's
    clock). Create/UpdateService are paced at
    ``writes_per_second``, the ECS service-modification quota. Returns the state Check Services
    polls (with what each updated service ran before: a rollback restores it) and the rows."""
    pace = RateLimiter(writes_per_second, burst=writes_per_second)
    existing = describe_services(
        clients, spec.cluster, (s.ecs_service_name for s in spec.services), tags=True
    )
    actions: dict[str, str] = {}
    previous: dict[str, dict[str, Any]] = {}  # ECS service -> as it was before UpdateService
    rows: list[Change] = []
    to_create: list[Service] = []
    to_update: list[tuple[Service, dict[str, Any]]] = []
    retag: list[tuple[str, Change]] = []  # (service ARN, row): the spec's tags that differ
    pipelined = 0  # created by this build before this step
    for service in spec.services:
        current = existing.get(service.ecs_service_name)
        status = current["status"] if current else "INACTIVE"
        if status == "DRAINING":
            raise ServiceConflict(
                f"ECS service {service.ecs_service_name} in cluster {spec.cluster_name} is DRAINING after a delete;"
                " wait until it is INACTIVE, then build again"
            )
        removed = record.removed_overrides(recorded, service)
        wanted = desired.ecs_service(
            caller,
            spec,
            service,
            registries[service.name],
            task_definitions[service.name],
            removed,
        )
        if current is not None and status == "ACTIVE":
            _check_adoptable(current, service, spec, registry_arn(caller, registries[service.name]))
            if build and ecs_tags(current).get(TAG_BUILD) == build:
                # Created by this build's loop (steps/pipeline.py) or a retried attempt of it.
                rows.append(
                    Change(kind="ecsService", name=service.ecs_service_name, action="create")
                )
                actions[service.ecs_service_name] = "created"
                pipelined += 1
                continue
        change = diff.ecs_service_change(
            service,
            wanted,
            current,
            managed=True,
            redeploy=redeploy,
            tags=desired.tags(spec, service),
            cannot_unset=desired.cannot_unset(removed),
        )
        rows.append(change)
        if change.action == "create":
            to_create.append(service)
            actions[service.ecs_service_name] = "created"
        elif change.action == "update" and current is not None:
            request = diff.update_request(change, wanted)
            if request:  # not only tags
                to_update.append((service, request))
                previous[service.ecs_service_name] = before_update(current, request)
            retag.append((str(current.get("serviceArn", "")), change))
            actions[service.ecs_service_name] = "updated"
        else:
            actions[service.ecs_service_name] = "adopted"
    pmap(
        lambda s: create_service(
            clients, caller, spec, s, registries[s.name], task_definitions[s.name], build, pace
        ),
        to_create,
        max_workers,
    )
    pmap(
        lambda item: update_service(clients, spec, item[0], item[1], pace),
        to_update,
        max_workers,
    )
    pmap(lambda item: retag_service(clients, *item), retag, max_workers)
    operations, instance_rows, instances_before = converge_static_instances(
        clients, spec, registries, recorded_instances, max_workers, build
    )
    # Nothing new to start (an unchanged re-run): check at once instead of waiting a task's
    # start-up time.
    first_wait: int | None = None if pipelined or to_create or to_update or operations else 0
    if pipelined and not (to_create or to_update or operations) and started_at is not None:
        # Only services the loop created before this step (``started_at``, pacing's clock):
        # their tasks have been starting since, at least as long as this step has run.
        first_wait = max(0, schedule.wait_before(0) - int(pacing.TIMER.now() - started_at))
    poll = Poll.start(schedule, first_wait=first_wait)
    state = ServicesState(
        ready=False,
        poll=poll,
        actions=actions,
        operations=operations,
        previous=Restore(services=previous, instances=instances_before)
        if previous or instances_before
        else None,
    )
    return state, rows + instance_rows


def retag_service(clients: Clients, arn: str, change: Change) -> None:
    """TagResource / UntagResource of the spec's tags that differ (the row's ``tags.*``)."""
    retag.ecs(clients, arn, change, change.name)


def before_update(current: ServiceTypeDef, request: dict[str, Any] | None = None) -> dict[str, Any]:
    """What UpdateService changes on a service, as it is before the update: the request that
    restores it (a failed re-run's rollback sends it). Always the revision, count and network;
    and every other field of ``request`` (the update) that the service describes."""
    restore: dict[str, Any] = {
        "taskDefinition": short_task_definition(str(current.get("taskDefinition", ""))),
        "desiredCount": current.get("desiredCount", 0),
    }
    described: dict[str, Any] = dict(current)
    for field in ("networkConfiguration", *(request or {})):
        if field in restore or field == "forceNewDeployment":
            continue
        value = described.get(field)
        if value is not None:
            restore[field] = value
    return restore


def converge_static_instances(
    clients: Clients,
    spec: EnvironmentSpec,
    registries: dict[str, str],
    recorded: frozenset[str],
    max_workers: int,
    build: str | None = None,
) -> tuple[dict[str, str], list[Change], dict[str, dict[str, str] | None]]:
    """Static instances to the spec (diff.instance_changes): RegisterInstance for each new or
    changed one, DeregisterInstance for each one envbuild registered (``recorded``: the
    environment record's "<service>/<id>") that the spec no longer lists. Returns the Cloud Map
    operations Check Services awaits ("RegisterInstance <service>/<id>" or "DeregisterInstance
    <service>/<id>" -> operation id), the rows, and each changed instance as it was before
    (attributes; None: it did not exist)."""
    services = [
        s
        for s in spec.services
        if s.instances or any(key.split("/", 1)[0] == s.name for key in recorded)
    ]
    if not services:
        return {}, [], {}
    registered = pmap(lambda s: list_instances(clients, registries[s.name]), services, max_workers)
    rows: list[tuple[Service, Change]] = []
    before: dict[str, dict[str, str] | None] = {}
    for service, instances in zip(services, registered, strict=True):
        static = {i.id: i.attributes for i in instances if not is_task(i)}
        for row in diff.instance_changes(service, static, set(recorded)):
            rows.append((service, row))
            if row.action != "unchanged":
                before[row.name] = static.get(row.name.split("/", 1)[1])

    def apply(item: tuple[Service, Change]) -> tuple[str, str] | None:
        service, row = item
        registry_id = registries[service.name]
        instance_id = row.name.split("/", 1)[1]
        if row.action in ("create", "update"):
            instance = next(i for i in service.instances if i.id == instance_id)
            with aws_errors(f"RegisterInstance {instance_id} in {service.name}"):
                operation = clients.servicediscovery.register_instance(
                    ServiceId=registry_id,
                    InstanceId=instance_id,
                    CreatorRequestId=spec.request_token(
                        "instance", registry_id, instance_id, build or ""
                    ),
                    Attributes=desired.instance_attributes(service, instance),
                )["OperationId"]
            return f"RegisterInstance {row.name}", operation
        if row.action == "remove":
            with aws_errors(f"DeregisterInstance {instance_id} in {service.name}"):
                operation = clients.servicediscovery.deregister_instance(
                    ServiceId=registry_id, InstanceId=instance_id
                )["OperationId"]
            return f"DeregisterInstance {row.name}", operation
        return None

    operations = dict(r for r in pmap(apply, rows, max_workers) if r is not None)
    return operations, [row for _service, row in rows], before


def is_task(instance: Instance) -> bool:
    """An instance ECS registered for a task (ECS sets these attributes; static ones lack them)."""
    return "ECS_SERVICE_NAME" in instance.attributes


def own_tasks(instances: list[Instance], spec: EnvironmentSpec, service: Service) -> list[Instance]:
    """The instances ECS registered for the tasks of this ECS service in this cluster."""
    return [
        i
        for i in instances
        if i.attributes.get("ECS_SERVICE_NAME") == service.ecs_service_name
        and i.attributes.get("ECS_CLUSTER_NAME") == spec.cluster_name
    ]


def pending_operations(clients: Clients, operations: dict[str, str]) -> dict[str, str]:
    """The static registrations still running; raises CloudMapOperationFailed for one that FAILed."""
    pending: dict[str, str] = {}
    for key, operation_id in operations.items():
        with aws_errors(f"GetOperation {operation_id} ({key})"):
            operation = clients.servicediscovery.get_operation(OperationId=operation_id)[
                "Operation"
            ]
        if operation["Status"] == "FAIL":
            raise CloudMapOperationFailed(
                f"{key} (Cloud Map operation {operation_id}) failed:"
                f" {operation.get('ErrorCode', '')} {operation.get('ErrorMessage', '')}".rstrip()
            )
        if operation["Status"] != "SUCCESS":
            pending[key] = operation_id
    return pending


def _wanted_count(service: Service, description: ServiceTypeDef) -> int:
    # With autoscaling the scaler owns the count: the service's own desiredCount is the target.
    if service.autoscaling is not None:
        return int(description.get("desiredCount", service.desiredCount))
    return service.desiredCount


def ecs_side_ready(service: Service, description: ServiceTypeDef | None) -> bool:
    """The ECS side of readiness: ACTIVE, running the wanted count, the rollout done (only the
    PRIMARY deployment left; a FAILED one already raised DeploymentFailed). Only then is the
    service's registry worth reading (Cloud Map's read quota)."""
    if description is None or description["status"] != "ACTIVE":
        return False
    return (
        description.get("runningCount", 0) == _wanted_count(service, description)
        and len(description.get("deployments", [])) <= 1
    )


def _not_ready_reason(
    spec: EnvironmentSpec,
    service: Service,
    description: ServiceTypeDef | None,
    instances: list[Instance] | None,
) -> str | None:
    """Why the service is not ready yet, or None. Counted: the tasks of this ECS service in this
    cluster (the ECS_SERVICE_NAME and ECS_CLUSTER_NAME attributes ECS registers) and the
    spec's static instances; any other instance in the registry is named, never counted.
    ``instances`` None: the registry was not read (the ECS side is not ready yet), so the reason
    gives the ECS side only."""
    name = service.ecs_service_name
    if description is None or description["status"] != "ACTIVE":
        return f"{name}: not found or not ACTIVE"
    running = description.get("runningCount", 0)
    deployments = description.get("deployments", [])
    # A rolling update (UpdateService to a new task definition) is done when the old deployment
    # has gone: its tasks stopped, leaving only the PRIMARY one.
    rolled_out = len(deployments) <= 1
    static_ids = {i.id for i in service.instances}
    read = instances is not None
    instances = instances or []
    tasks = own_tasks(instances, spec, service)
    static = [i for i in instances if i.id in static_ids and not is_task(i)]
    others = [i for i in instances if i not in tasks and i not in static]
    own = tasks + static
    wanted = _wanted_count(service, description)
    expected = wanted + len(service.instances)
    missing_static = sorted(static_ids - {i.id for i in static})
    unhealthy = [i for i in own if i.health != "HEALTHY"]
    if (
        read
        and running == wanted
        and len(tasks) == wanted
        and not missing_static
        and not unhealthy
        and rolled_out
    ):
        return None
    if read:
        reason = (
            f"{name}: {running}/{wanted} tasks running,"
            f" {len(own)}/{expected} registered in Cloud Map"
        )
    else:
        reason = f"{name}: {running}/{wanted} tasks running (Cloud Map read once they all run)"
    if missing_static:
        reason += f", static instance(s) not registered yet: {', '.join(missing_static)}"
    if unhealthy:
        reason += ", not HEALTHY: " + ", ".join(
            f"{i.id} ({i.ipv4 or 'no IPv4'}) {i.health}" for i in unhealthy[:10]
        )
    if not rolled_out:
        primary: dict[str, Any] = next(
            (dict(d) for d in deployments if d.get("status") == "PRIMARY"), {}
        )
        reason += (
            f", deployment to {short_task_definition(str(primary.get('taskDefinition', '')))}"
            f" {str(primary.get('rolloutState', 'IN_PROGRESS')).lower()}"
            f" ({len(deployments)} deployments)"
        )
    if others:
        reason += (
            "; also in the registry, not this service's (not counted): "
            + ", ".join(f"{i.id} ({i.ipv4 or 'no IPv4'})" for i in others[:10])
            + (f" and {len(others) - 10} more" if len(others) > 10 else "")
        )
    events = description.get("events", [])
    if events:
        reason += f" (last event: {events[0]['message']})"
    return reason


def _last_error(description: ServiceTypeDef) -> str:
    """The newest service event that reports an error (a task that failed to start), else the
    newest event: what DescribeServices already says about why the tasks stopped."""
    events = [str(e.get("message", "")) for e in description.get("events", [])]
    for message in events:
        if "error" in message.lower() or "health check" in message.lower():
            return message
    return events[0] if events else ""


def _deployment_failure(
    service: Service, description: ServiceTypeDef | None, wanted: str | None, action: str
) -> str | None:
    """Why the deployment of the spec's task definition ``wanted`` failed for good, or None:
    ECS's circuit breaker marked it FAILED, or the service (created or updated by this build)
    no longer runs it because ECS rolled it back."""
    if description is None or description.get("status") != "ACTIVE" or not wanted:
        return None
    name = service.ecs_service_name
    now = short_task_definition(str(description.get("taskDefinition", "")))
    deployments = [dict(d) for d in description.get("deployments", [])]
    failed = next(
        (
            d
            for d in deployments
            if d.get("rolloutState") == "FAILED"
            and short_task_definition(str(d.get("taskDefinition", ""))) == wanted
        ),
        None,
    )
    retried = any(
        d.get("status") == "PRIMARY"
        and d.get("rolloutState") != "FAILED"
        and short_task_definition(str(d.get("taskDefinition", ""))) == wanted
        for d in deployments
    )
    if failed is not None and retried:
        # a new deployment of the same revision (forceNewDeployment) replaces the FAILED one
        return None
    if failed is None:
        # The FAILED deployment is gone once the rollback is done: the service runs another
        # revision than the one this build set, with no deployment of it left.
        if action not in ("created", "updated") or now == wanted:
            return None
        if any(
            short_task_definition(str(d.get("taskDefinition", ""))) == wanted for d in deployments
        ):
            return None
        reason = f"{name}: the deployment of {wanted} is gone"
    else:
        reason = (
            f"{name}: deployment of {wanted} FAILED"
            f" ({failed.get('rolloutStateReason', '') or 'no reason given'}),"
            f" {failed.get('failedTasks', 0)} failed tasks"
        )
    last = _last_error(description)
    if last:
        reason += f", last error: {last}"
    if service.healthCheck is not None and "health check" in last.lower():
        reason += (
            f", its tasks never became healthy: the healthCheck of {service.name}"
            f" ({' '.join(service.healthCheck.command)}) fails"
        )
    if now != wanted:
        reason += f", ECS rolled {name} back to {now}"
    else:
        reason += f", ECS did not roll {name} back (no earlier deployment that completed)"
    return reason


def check_services(
    clients: Clients,
    spec: EnvironmentSpec,
    registries: dict[str, str],
    state: ServicesState,
    schedule: PollSchedule,
    max_workers: int,
    task_definitions: dict[str, str] | None = None,
) -> ServicesState:
    """Ready when every service runs desiredCount tasks of a completed deployment, its tasks and
    static instances are all registered in Cloud Map and HEALTHY, and the build's Cloud Map
    operations (static registrations, TTL updates) succeeded. Raises DeploymentFailed at once
    when ECS's circuit breaker failed the deployment of a service's ``task_definitions`` entry
    (service name -> "family:revision"): polling on would only wait for the budget to run out."""
    pending = pending_operations(clients, state.operations)
    descriptions = describe_services(
        clients, spec.cluster, (s.ecs_service_name for s in spec.services)
    )
    wanted = task_definitions or {}
    failures = [
        failure
        for service in spec.services
        if (
            failure := _deployment_failure(
                service,
                descriptions.get(service.ecs_service_name),
                wanted.get(service.name),
                state.actions.get(service.ecs_service_name, ""),
            )
        )
    ]
    if failures:
        message = (
            f"{len(failures)} of {len(spec.services)} services failed to deploy: "
            + "; ".join(failures[:20])
        )
        if len(failures) > 20:
            message += f"; and {len(failures) - 20} more"
        raise DeploymentFailed(message)
    # Cloud Map (20 reads/s) is read only for the services whose ECS side is ready and that no
    # earlier poll of this build found ready: the last poll reads only the stragglers. A service
    # found ready stays so while its ECS side does; Verify DNS checks every service three ways.
    known = set(state.readyServices)
    ecs_ready = {
        s.name for s in spec.services if ecs_side_ready(s, descriptions.get(s.ecs_service_name))
    }
    to_read = [s for s in spec.services if s.name in ecs_ready and s.name not in known]
    registered = pmap(
        lambda s: instances_with_health(clients, registries[s.name]), to_read, max_workers
    )
    by_service: dict[str, list[Instance] | None] = dict(
        zip((s.name for s in to_read), registered, strict=True)
    )
    reasons: list[str] = []
    ready_now: list[str] = []
    for service in spec.services:
        if service.name in known and service.name in ecs_ready:
            ready_now.append(service.name)
            continue
        reason = _not_ready_reason(
            spec,
            service,
            descriptions.get(service.ecs_service_name),
            by_service.get(service.name),
        )
        if reason:
            reasons.append(reason)
        else:
            ready_now.append(service.name)
    if pending:
        reasons.append(
            f"{len(pending)} Cloud Map operation(s) still running: "
            + ", ".join(sorted(pending)[:10])
        )
    poll = state.poll.next(schedule)
    if not reasons:
        return state.model_copy(
            update={
                "ready": True,
                "poll": poll,
                "message": "all services ready",
                "operations": {},
                "readyServices": [],
            }
        )
    message = (
        f"{len(reasons)} of {len(spec.services)} services not ready after {poll.attempt} checks"
        f" (about {schedule.budget_seconds()} s allowed): " + "; ".join(reasons[:20])
    )
    if len(reasons) > 20:
        message += f"; and {len(reasons) - 20} more"
    return state.model_copy(
        update={
            "ready": False,
            "poll": poll,
            "message": message,
            "operations": pending,
            "readyServices": ready_now,
        }
    )
