"""Convergence: what a build of a spec would change in the account, and what it leaves behind.

The plan (``plan: true`` / ``envbuild plan``) and the build's output (``changes``) are rows of
the one diff (steps/diff.py), the same functions the build's steps apply, and the removal plan
of the teardown (teardown.plan_teardown), so the plan shows what the build does. The plan reads
only. docs/convergence.md describes what is compared for each resource.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from envbuild_lambda.errors import aws_errors
from envbuild_lambda.parallel import pmap
from envbuild_lambda.removal import RemovalPlan
from envbuild_lambda.settings import get_settings
from envbuild_lambda.spec import is_managed
from envbuild_lambda.steps import autoscaling as scaling
from envbuild_lambda.steps import desired, diff, outputs, ownership, record
from envbuild_lambda.steps import registries as registry_steps
from envbuild_lambda.steps import task_definitions as td_steps
from envbuild_lambda.steps.desired import registry_arn
from envbuild_lambda.steps.diff import Change
from envbuild_lambda.steps.namespace import cloudmap_tags, find_namespace
from envbuild_lambda.steps.services import describe_services, ecs_tags, is_task, list_instances
from envbuild_lambda.steps.summary import CHANGE_ROWS_BYTES
from envbuild_lambda.steps.teardown import ecs_services_in_cluster, plan_teardown

if TYPE_CHECKING:
    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service
    from envbuild_lambda.state import NamespaceState
    from envbuild_lambda.steps.record import EnvironmentRecord

#: How the plan names a task definition revision a build would register.
NEW_REVISION = "(new revision)"
_NOT_OURS = "exists, not created by envbuild: used as it is"


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
# The build's change rows (its output) and the plan: both from steps/diff.py

#: The build output's rows take at most this many bytes (JSON); the rest are only counted, so
#: the summary stays far below Step Functions' 256 KiB per state at any size (the state-size
#: estimate, steps/summary.py, reserves it). Unchanged rows are only counted.
MAX_CHANGE_BYTES = CHANGE_ROWS_BYTES


def change_report(rows: list[Change], *, budget: int = MAX_CHANGE_BYTES) -> dict[str, Any]:
    """The rows as the build output carries them: {"rows", "counts"}, and "omitted" (how many
    changed rows did not fit in ``budget`` bytes)."""
    shown: list[dict[str, Any]] = []
    used = 0
    changed = [r for r in rows if r.action != "unchanged"]
    for row in changed:
        item = row.row()
        size = len(json.dumps(item)) + 2
        if used + size > budget:
            break
        shown.append(item)
        used += size
    report: dict[str, Any] = {"rows": shown, "counts": diff.counts(rows)}
    if len(shown) < len(changed):
        report["omitted"] = len(changed) - len(shown)
    return report


def _removal_rows(
    plan: RemovalPlan | None, removed: list[str], names: dict[str, str]
) -> list[Change]:
    """remove rows for a prune's removal plan; keep rows for removed services without prune."""
    if plan is None:
        return [
            Change(
                kind="ecsService",
                name=name,
                action="keep",
                note="not in the spec: left running (prune: true deletes it)",
            )
            for name in removed
        ]
    rows: list[Change] = []
    for kind, items in (
        ("ecsService", plan.ecsServices),
        ("registry", [plan.registryNames.get(r) or names.get(r, r) for r in plan.registries]),
        ("logGroup", plan.logGroups),
        ("taskDefinition", plan.taskDefinitions),
        ("parameter", plan.parameters),
    ):
        rows += [
            Change(kind=kind, name=item, action="remove", note="not in the spec (prune: true)")  # type: ignore[arg-type]
            for item in items
        ]
    return rows


def _namespace_row(namespace: NamespaceState | None, spec: EnvironmentSpec) -> Change:
    name = spec.namespace.name
    if namespace is not None and namespace.operationId:
        return Change(
            kind="namespace", name=name, action="create", note=f"in {spec.namespace.vpcId}"
        )
    if namespace is not None and namespace.adopted:
        return Change(kind="namespace", name=name, action="adopt", note=_NOT_OURS)
    return Change(
        kind="namespace",
        name=name,
        action="unchanged",
        note=namespace.id or "" if namespace else "",
    )


def _task_definition_row(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    service: Service,
    service_row: Change,
    task_definition: str,
    before: str | None,
    recorded: EnvironmentRecord | None = None,
) -> Change:
    """The task definition's row of a build, from what happened to its ECS service: created
    with it, a new revision the service was rolled to (fields: what differs from the revision
    it ran before), or unchanged. Named as the plan names them: the family for a revision
    registered (its number, unknown to a plan, in the note), family:revision otherwise."""
    family = task_definition.rsplit(":", 1)[0]
    if service_row.action == "create":
        return Change(
            kind="taskDefinition",
            name=family,
            action="create",
            note=f"registered {task_definition}",
        )
    if before is None or before == task_definition:
        return Change(kind="taskDefinition", name=task_definition, action="unchanged")
    wanted = desired.task_definition(
        caller,
        spec.environment,
        service,
        spec.executionRoleArn or "",
        spec.taskRoleArn or "",
        record.removed_overrides(recorded, service),
    )
    with aws_errors(f"DescribeTaskDefinition {before}"):
        old = clients.ecs.describe_task_definition(taskDefinition=before)["taskDefinition"]
    return Change(
        kind="taskDefinition",
        name=family,
        action="update",
        fields=diff.task_definition_fields(service, wanted, dict(old)),
        note=f"registered {task_definition}, after {before}",
    )


def build_changes(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    namespace: NamespaceState | None,
    created_registries: list[str],
    registry_rows: list[Change],
    service_rows: list[Change],
    task_definitions: dict[str, str],
    previous: dict[str, dict[str, Any]],
    removed: list[str],
    prune: RemovalPlan | None,
    scaling_rows: list[Change] | None = None,
    recorded: EnvironmentRecord | None = None,
    log_rows: list[Change] | None = None,
    namespace_row: Change | None = None,
    retagged: dict[str, Change] | None = None,
) -> dict[str, Any]:
    """What this build changed, as rows of the one diff (the build output's ``changes``);
    ``namespace_row`` (its tags converged) and ``retagged`` (revision -> its tags' row) as
    Create Services applied them."""
    rows = [namespace_row or _namespace_row(namespace, spec)]
    by_name = {row.name: row for row in registry_rows}
    created = set(created_registries)
    for service in spec.services:
        if service.name in created:
            rows.append(Change(kind="registry", name=service.name, action="create"))
        elif service.name in by_name:
            rows.append(by_name[service.name])
    rows += log_rows or []
    services_by_name = {row.name: row for row in service_rows if row.kind == "ecsService"}
    rows += [
        _task_definition_row(
            clients,
            caller,
            spec,
            service,
            services_by_name[service.ecs_service_name],
            task_definitions[service.name],
            previous.get(service.ecs_service_name, {}).get("taskDefinition"),
            recorded,
        )
        for service in spec.services
    ]
    rows = [
        (retagged or {}).get(row.name, row)
        if row.kind == "taskDefinition" and row.action == "unchanged"
        else row
        for row in rows
    ]
    rows += service_rows
    rows += scaling_rows or []
    rows += _removal_rows(prune, removed if not spec.prune else [], {})
    return change_report(rows)


def _service_plan_rows(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    service: Service,
    registries: dict[str, str],
    ecs_current: dict[str, Any],
    recorded: EnvironmentRecord | None,
    scaled: set[str] | None = None,
) -> list[Change]:
    """The rows of one service as a build would make them: the same diff functions the build's
    steps apply, on the same reads."""
    env = spec.environment
    rows: list[Change] = []

    # Cloud Map service (registry) and its static instances.
    registry_id = registries.get(service.name)
    want_registry = desired.registry(spec, service)
    if registry_id is None:
        rows.append(diff.registry_change(service, want_registry, None, managed=True))
        rows += [
            Change(kind="instance", name=diff.instance_key(service.name, i.id), action="create")
            for i in service.instances
        ]
    else:
        current = registry_steps.describe_registry(clients, registry_id)
        have = cloudmap_tags(clients, str(current["Arn"]))
        rows.append(
            diff.registry_change(
                service,
                want_registry,
                current,
                managed=is_managed(have, env),
                tags=(desired.tags(spec, service), have),
            )
        )
        static = {
            i.id: i.attributes for i in list_instances(clients, registry_id) if not is_task(i)
        }
        instances = recorded.names.get("instances", frozenset()) if recorded else frozenset()
        rows += diff.instance_changes(service, static, set(instances))

    # Log group.
    log_group = service.log_group(env)
    with aws_errors(f"DescribeLogGroups {log_group}"):
        found = clients.logs.describe_log_groups(logGroupNamePrefix=log_group, limit=1)["logGroups"]
    group = dict(found[0]) if found and found[0]["logGroupName"] == log_group else None
    retention = desired.log_retention(spec, service)
    if group is None:
        rows.append(diff.log_group_change(log_group, retention, None, managed=None))
    else:
        have_tags = td_steps.log_group_tags(clients, group)
        rows.append(
            diff.log_group_change(
                log_group,
                retention,
                group,
                managed=is_managed(have_tags, env),
                tags=(desired.tags(spec, service), have_tags),
            )
        )

    # Task definition: the family's latest ACTIVE revision, compared as RegisterTaskDefinition does.
    removed = record.removed_overrides(recorded, service)
    want_definition = desired.task_definition(
        caller, env, service, spec.executionRoleArn or "", spec.taskRoleArn or "", removed
    )
    definition = diff.task_definition_change(
        service,
        env,
        want_definition,
        td_steps.latest_revision(clients, service.family(env)),
        tags=desired.tags(spec, service),
    )
    rows.append(definition)
    revision = (
        definition.name
        if definition.action == "unchanged" or definition.note == diff.RETAG_NOTE
        else f"{service.family(env)}:{NEW_REVISION}"
    )

    # ECS service: as Create Services decides (the registry id of a registry to be created is
    # unknown: its ARN is not compared).
    current_service = ecs_current.get(service.ecs_service_name)
    managed_service = current_service is not None and is_managed(ecs_tags(current_service), env)
    want_service = desired.ecs_service(caller, spec, service, registry_id or "", revision, removed)
    service_row = diff.ecs_service_change(
        service,
        want_service,
        current_service,
        managed=managed_service,
        redeploy=spec.redeploy,
        tags=desired.tags(spec, service),
        cannot_unset=desired.cannot_unset(removed),
    )
    rows.append(service_row)

    # Its scalable target and policies (Create Services applies them after the service exists;
    # one it does not manage is never given or deprived of a target).
    if service_row.action == "create" or (managed_service and service_row.action != "conflict"):
        resource = desired.scalable_resource_id(spec, service)
        reads = service_row.action != "create" and resource in (scaled or set())
        target, policies = scaling.read(clients, spec, service, reads=reads)
        scaling_row = scaling.change(spec, service, target, policies)
        if scaling_row is not None:
            rows.append(scaling_row)
    return rows


def _conflict_row(row: Change, conflict: ownership.Conflict | None) -> Change:
    """The row of a resource envbuild does not own (a build fails at Preflight naming it)."""
    if conflict is None:
        return row
    return Change(
        kind=row.kind,
        name=conflict.name,
        action="conflict",
        note=f"{conflict.reason}: {conflict.fix}",
    )


def plan_changes(
    clients: Clients, caller: Caller, spec: EnvironmentSpec, max_workers: int
) -> list[Change]:
    """Per resource: create / update (fields: old, new) / replace (the environment's place
    changed: refused) / adopt (not envbuild's, used as it is) / unchanged / remove (with prune)
    / keep (a removed service without prune) / conflict (exists, not envbuild's:
    steps/ownership.py). Reads only."""
    recorded = record.read(clients, get_settings().require_record_table(), spec.environment)
    rows: list[Change] = diff.place_changes(spec, recorded)
    ns = spec.namespace
    namespace = find_namespace(clients, ns.name, ns.vpcId)
    registries: dict[str, str] = {}
    if namespace is None or not namespace.id:
        rows.append(Change(kind="namespace", name=ns.name, action="create", note=f"in {ns.vpcId}"))
    else:
        have_tags = cloudmap_tags(clients, namespace.arn) if namespace.arn else {}
        managed = namespace.arn is not None and is_managed(have_tags, spec.environment)
        rows.append(
            diff.namespace_tags_change(ns.name, namespace.id, desired.tags(spec, None), have_tags)
            if managed
            else Change(kind="namespace", name=ns.name, action="adopt", note=_NOT_OURS)
        )
        registries = registry_steps.existing_registries(clients, namespace.id)
    in_cluster = ecs_services_in_cluster(clients, spec.cluster) or {}
    ecs_current: dict[str, Any] = {
        s.ecs_service_name: in_cluster[s.ecs_service_name]
        for s in spec.services
        if s.ecs_service_name in in_cluster
    }
    conflicts: dict[tuple[str, str], ownership.Conflict] = {
        (c.service, c.type): c
        for c in ownership.find_conflicts(
            clients,
            spec,
            max_workers,
            recorded_instances=recorded.names.get("instances", frozenset())
            if recorded
            else frozenset(),
        )
    }
    scaled = scaling.existing_targets(
        clients, [desired.scalable_resource_id(spec, s) for s in spec.services]
    )
    for service, service_rows in zip(
        spec.services,
        pmap(
            lambda s: _service_plan_rows(
                clients, caller, spec, s, registries, ecs_current, recorded, scaled
            ),
            spec.services,
            max_workers,
        ),
        strict=True,
    ):
        rows += [
            _conflict_row(row, conflicts.get((service.name, row.kind))) for row in service_rows
        ]

    namespace_id = namespace.id if namespace is not None else None
    ecs, removed_registries = removed_services(clients, caller, spec, namespace_id)
    plan = (
        prune_plan(clients, caller, spec, max_workers)
        if spec.prune and (ecs or removed_registries)
        else None
    )
    names = {registry_id: name for name, registry_id in registries.items()}
    rows += _removal_rows(plan, [] if spec.prune else ecs, names)
    return rows


def plan_output(spec: EnvironmentSpec, rows: list[Change]) -> dict[str, Any]:
    """The plan execution's output: every row (``changes``), the counts and a one-line summary."""
    counts = diff.counts(rows)
    changing = sum(counts.get(action, 0) for action in diff.CHANGING)
    message = (
        f"plan for {spec.environment}: "
        + ", ".join(f"{counts.get(action, 0)} to {action}" for action in diff.CHANGING)
        + f", {counts.get('unchanged', 0)} unchanged"
        + (f", {counts['adopt']} adopted (not envbuild's)" if counts.get("adopt") else "")
        + (f", {counts['keep']} not in the spec (kept)" if counts.get("keep") else "")
    )
    if counts.get("replace"):
        message += (
            f"; {counts['replace']} replace(s): the environment's place changed, a build would"
            " fail at Preflight (EnvironmentMoved) and change nothing"
        )
    if counts.get("conflict"):
        message += (
            f"; {counts['conflict']} conflict(s): a build would fail at Preflight"
            " (PreflightFailed) and create nothing"
        )
    return {
        "environment": spec.environment,
        "changes": [row.row() for row in rows],
        "counts": counts,
        "changing": changing,
        "conflicts": counts.get("conflict", 0),
        "message": message,
    }
