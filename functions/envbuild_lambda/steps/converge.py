"""Convergence: what a build of a spec would change in the account, and what it leaves behind.

The plan (``plan: true`` / ``envbuild plan``) compares the spec with the account using the same
functions the build steps decide with (task_definitions.differences, services.service_changes,
registries.ttl_changes, teardown.plan_teardown), so the plan shows what the build does. It reads
only. docs/convergence.md describes what is compared for each resource.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from envbuild_lambda.errors import aws_errors
from envbuild_lambda.parallel import pmap
from envbuild_lambda.removal import RemovalPlan
from envbuild_lambda.settings import get_settings
from envbuild_lambda.spec import is_managed
from envbuild_lambda.steps import outputs, ownership, record
from envbuild_lambda.steps import registries as registry_steps
from envbuild_lambda.steps import task_definitions as td_steps
from envbuild_lambda.steps.namespace import cloudmap_tags, find_namespace
from envbuild_lambda.steps.services import (
    describe_services,
    ecs_tags,
    registry_arn,
    service_changes,
    short_task_definition,
)
from envbuild_lambda.steps.teardown import ecs_services_in_cluster, plan_teardown

if TYPE_CHECKING:
    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service

Action = Literal["create", "adopt", "update", "delete", "keep", "conflict"]
#: Order of the plan's rows for one service, as the build creates them.
NEW_REVISION = "(new revision)"


class Change(BaseModel):
    """One row of the plan: a resource and what the build does to it."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["namespace", "registry", "logGroup", "taskDefinition", "ecsService"]
    name: str
    action: Action
    #: "field: old -> new", for action update.
    changes: list[str] = []
    note: str = ""


# ---------------------------------------------------------------------------------------------
# Removed services (in the account, managed for the environment, no longer in the spec)


def removed_services(
    clients: Clients, caller: Caller, spec: EnvironmentSpec, namespace_id: str | None
) -> tuple[list[str], list[str]]:
    """(ECS service names, registry ids) envbuild manages for this environment that the spec no
    longer lists. Only resources not named by the spec are described, so an unchanged re-run
    makes one ListServices per service kind."""
    wanted_ecs = {service.ecs_service_name for service in spec.services}
    with aws_errors(f"ListServices in cluster {spec.cluster_name}"):
        pages = clients.ecs.get_paginator("list_services").paginate(cluster=spec.cluster)
        names = [arn.rsplit("/", 1)[-1] for page in pages for arn in page["serviceArns"]]
    candidates = [name for name in names if name not in wanted_ecs]
    ecs = [
        name
        for name, service in sorted(
            describe_services(clients, spec.cluster, candidates, tags=True).items()
        )
        if service.get("status") != "INACTIVE" and is_managed(ecs_tags(service), spec.environment)
    ]
    registries: list[str] = []
    if namespace_id:
        wanted = {service.name for service in spec.services}
        found = registry_steps.existing_registries(clients, namespace_id)
        registries = sorted(
            registry_id
            for name, registry_id in found.items()
            if name not in wanted
            and is_managed(
                cloudmap_tags(clients, registry_arn(caller, registry_id)), spec.environment
            )
        )
    return ecs, registries


def prune_plan(
    clients: Clients, caller: Caller, spec: EnvironmentSpec, max_workers: int
) -> RemovalPlan:
    """The teardown's RemovalPlan (teardown.plan_teardown), restricted to the services the spec
    no longer lists: their ECS services, Cloud Map services, log groups and task definitions.
    The namespace and everything the spec still names stay."""
    # The environment record bounds a prune as it bounds a teardown (read here, not passed in:
    # the build's and the plan's callers need nothing else of it).
    recorded = record.read(clients, get_settings().require_record_table(), spec.environment)
    full = plan_teardown(
        clients,
        caller,
        spec,
        recorded,
        delete_log_groups=True,
        deregister_task_definitions=True,
        max_workers=max_workers,
    )
    ecs_names = {service.ecs_service_name for service in spec.services}
    families = {service.family(spec.environment) for service in spec.services}
    log_groups = {service.log_group(spec.environment) for service in spec.services}
    namespace = find_namespace(clients, spec.namespace.name, spec.namespace.vpcId)
    in_namespace = (
        registry_steps.existing_registries(clients, namespace.id)
        if namespace is not None and namespace.id
        else {}
    )
    keep_registries = {in_namespace[s.name] for s in spec.services if s.name in in_namespace}
    # The outputs of the services that stay (NAMESPACE_ID too); a pruned service's goes with it.
    path = outputs.parameter_path(spec.environment)
    keep_parameters = {
        path + key for key in outputs.outputs("", {s.name: "" for s in spec.services})
    }
    registries = [r for r in full.registries if r not in keep_registries]
    return RemovalPlan(
        environment=spec.environment,
        cluster=spec.cluster,
        ecsServices=[name for name in full.ecsServices if name not in ecs_names],
        registries=registries,
        registryNames={r: full.registryNames[r] for r in registries if r in full.registryNames},
        parameters=[name for name in full.parameters if name not in keep_parameters],
        namespace=None,
        logGroups=[name for name in full.logGroups if name not in log_groups],
        taskDefinitions=[
            revision
            for revision in full.taskDefinitions
            if revision.rsplit(":", 1)[0] not in families
        ],
        kept=[],
    )


def removals(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    namespace_id: str | None,
    max_workers: int,
) -> tuple[list[str], RemovalPlan | None]:
    """What CreateServices reports (the removed ECS services) and, with ``prune``, the plan for
    the teardown workflow that deletes them (None: nothing to delete)."""
    ecs, registries = removed_services(clients, caller, spec, namespace_id)
    if not (ecs or registries) or not spec.prune:
        return ecs, None
    plan = prune_plan(clients, caller, spec, max_workers)
    return ecs, None if plan.is_empty() else plan


# ---------------------------------------------------------------------------------------------
# The plan


def _managed_note(managed: bool) -> str:
    return "" if managed else "exists, not created by envbuild: used as it is"


def _service_rows(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    service: Service,
    registries: dict[str, str],
    ecs_current: dict[str, Any],
) -> list[Change]:
    env = spec.environment
    rows: list[Change] = []

    # Cloud Map service (registry): created, or its A record TTL updated if envbuild manages it.
    registry_id = registries.get(service.name)
    if registry_id is None:
        rows.append(Change(type="registry", name=service.name, action="create"))
    else:
        registry = registry_steps.describe_registry(clients, registry_id)
        ttl = registry_steps.dns_ttl(registry)
        managed = is_managed(cloudmap_tags(clients, str(registry["Arn"])), env)
        if managed and ttl != service.dnsTtl:
            rows.append(
                Change(
                    type="registry",
                    name=service.name,
                    action="update",
                    changes=[f"dnsTtl: {ttl} -> {service.dnsTtl}"],
                )
            )
        else:
            rows.append(
                Change(
                    type="registry",
                    name=service.name,
                    action="adopt",
                    note=_managed_note(managed)
                    + (f" (dnsTtl {ttl}, spec {service.dnsTtl})" if ttl != service.dnsTtl else ""),
                )
            )

    # Log group.
    log_group = service.log_group(env)
    with aws_errors(f"DescribeLogGroups {log_group}"):
        found = clients.logs.describe_log_groups(logGroupNamePrefix=log_group, limit=1)["logGroups"]
    exists = bool(found) and found[0]["logGroupName"] == log_group
    rows.append(Change(type="logGroup", name=log_group, action="adopt" if exists else "create"))

    # Task definition: the family's latest ACTIVE revision, compared as RegisterTaskDefinition does.
    family = service.family(env)
    desired = td_steps.desired_definition(
        caller, env, service, spec.executionRoleArn or "", spec.taskRoleArn or ""
    )
    latest = td_steps.latest_revision(clients, family)
    if latest is None:
        task_definition = f"{family}:{NEW_REVISION}"
        rows.append(Change(type="taskDefinition", name=family, action="create"))
    elif td_steps.latest_matching_revision(clients, family, desired) is not None:
        task_definition = f"{family}:{latest['revision']}"
        rows.append(Change(type="taskDefinition", name=task_definition, action="adopt"))
    else:
        task_definition = f"{family}:{NEW_REVISION}"
        rows.append(
            Change(
                type="taskDefinition",
                name=family,
                action="update",
                changes=td_steps.differences(desired, latest),
                note=f"registers a new revision after {family}:{latest['revision']}",
            )
        )

    # ECS service: created, or rolled to the task definition / desired count if envbuild manages it.
    current = ecs_current.get(service.ecs_service_name)
    if current is None or current.get("status") == "INACTIVE":
        rows.append(Change(type="ecsService", name=service.ecs_service_name, action="create"))
    else:
        managed = is_managed(ecs_tags(current), env)
        changes = service_changes(current, service, task_definition) if managed else {}
        if changes:
            rows.append(
                Change(
                    type="ecsService",
                    name=service.ecs_service_name,
                    action="update",
                    changes=[f"{field}: {old} -> {new}" for field, (old, new) in changes.items()],
                )
            )
        else:
            rows.append(
                Change(
                    type="ecsService",
                    name=service.ecs_service_name,
                    action="adopt",
                    note=_managed_note(managed)
                    or f"on {short_task_definition(str(current.get('taskDefinition', '')))}",
                )
            )
    return rows


def _conflict_row(row: Change, conflict: ownership.Conflict | None) -> Change:
    """The row of a resource envbuild does not own (a build fails at Preflight naming it)."""
    if conflict is None:
        return row
    return Change(
        type=row.type,
        name=conflict.name,
        action="conflict",
        note=f"{conflict.reason}: {conflict.fix}",
    )


def plan_changes(
    clients: Clients, caller: Caller, spec: EnvironmentSpec, max_workers: int
) -> list[Change]:
    """Per resource: create / adopt / update (field: old -> new) / delete (with prune) / keep
    (a removed service without prune) / conflict (exists, not envbuild's: steps/ownership.py).
    Reads only."""
    ns = spec.namespace
    namespace = find_namespace(clients, ns.name, ns.vpcId)
    rows: list[Change] = []
    registries: dict[str, str] = {}
    if namespace is None or not namespace.id:
        rows.append(Change(type="namespace", name=ns.name, action="create", note=f"in {ns.vpcId}"))
    else:
        managed = namespace.arn is not None and is_managed(
            cloudmap_tags(clients, namespace.arn), spec.environment
        )
        rows.append(
            Change(
                type="namespace",
                name=ns.name,
                action="adopt",
                note=_managed_note(managed) or namespace.id,
            )
        )
        registries = registry_steps.existing_registries(clients, namespace.id)
    in_cluster = ecs_services_in_cluster(clients, spec.cluster) or {}
    ecs_current: dict[str, Any] = {
        s.ecs_service_name: in_cluster[s.ecs_service_name]
        for s in spec.services
        if s.ecs_service_name in in_cluster
    }
    conflicts: dict[tuple[str, str], ownership.Conflict] = {
        (c.service, c.type): c for c in ownership.find_conflicts(clients, spec, max_workers)
    }
    for service, service_rows in zip(
        spec.services,
        pmap(
            lambda s: _service_rows(clients, caller, spec, s, registries, ecs_current),
            spec.services,
            max_workers,
        ),
        strict=True,
    ):
        rows += [
            _conflict_row(row, conflicts.get((service.name, row.type))) for row in service_rows
        ]

    namespace_id = namespace.id if namespace is not None else None
    ecs, removed_registries = removed_services(clients, caller, spec, namespace_id)
    if spec.prune and (ecs or removed_registries):
        plan = prune_plan(clients, caller, spec, max_workers)
        names = {registry_id: name for name, registry_id in registries.items()}
        for kind, items in (
            ("ecsService", plan.ecsServices),
            ("registry", [names.get(r, r) for r in plan.registries]),
            ("logGroup", plan.logGroups),
            ("taskDefinition", plan.taskDefinitions),
        ):
            rows += [
                Change(type=kind, name=item, action="delete", note="not in the spec (prune: true)")  # type: ignore[arg-type]
                for item in items
            ]
    else:
        rows += [
            Change(
                type="ecsService",
                name=name,
                action="keep",
                note="not in the spec: left running (prune: true deletes it)",
            )
            for name in ecs
        ]
    return rows


def plan_output(spec: EnvironmentSpec, rows: list[Change]) -> dict[str, Any]:
    """The plan execution's output: the rows and a one-line summary."""
    counts = Counter(row.action for row in rows)
    changes = {action: counts.get(action, 0) for action in ("create", "update", "delete")}
    message = (
        f"plan for {spec.environment}: "
        + ", ".join(f"{n} to {action}" for action, n in changes.items())
        + f", {counts.get('adopt', 0)} unchanged"
        + (f", {counts['keep']} not in the spec (kept)" if counts.get("keep") else "")
    )
    if counts.get("conflict"):
        message += (
            f"; {counts['conflict']} conflict(s): a build would fail at Preflight"
            " (PreflightFailed) and create nothing"
        )
    return {
        "environment": spec.environment,
        "plan": [row.model_dump(mode="json") for row in rows],
        "changes": sum(changes.values()),
        "conflicts": counts.get("conflict", 0),
        "message": message,
    }
