"""The one diff: the desired state (steps/desired.py) against what the account describes.

Every comparison of a spec with the account is made here, field by field and resource by
resource, and nowhere else. Its ``Change`` rows are what the plan shows, what the build's steps
apply (they act on ``Change.action`` and ``Change.fields``) and what the build's output lists.

``compare`` is generic: every field of the rendered request is compared with the described
resource, so a field added to ``desired`` is compared without any code here. Fields AWS adds
(defaults such as hostPort or maximumPercent) are not in the request and do not count; a field
the spec no longer sets is ``None`` in the request and counts when the resource still has it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from envbuild_lambda.steps.desired import Reset
from envbuild_lambda.steps.desired import instance_attributes as desired_attributes
from envbuild_lambda.steps.record import cluster_name

if TYPE_CHECKING:
    from envbuild_lambda.spec import EnvironmentSpec, Service, StaticInstance
    from envbuild_lambda.steps.record import EnvironmentRecord

Kind = Literal[
    "namespace",
    "registry",
    "instance",
    "logGroup",
    "taskDefinition",
    "ecsService",
    "autoscaling",
    "parameter",
]
Action = Literal["create", "update", "replace", "adopt", "unchanged", "remove", "keep", "conflict"]
#: The actions that change the account (a plan's "N to change").
CHANGING: tuple[Action, ...] = ("create", "update", "replace", "remove")

#: Lists of values whose order AWS does not keep (compared as sets).
UNORDERED = frozenset({"subnets", "securityGroups", "requiresCompatibilities"})
#: Lists of objects matched by this key instead of by position.
KEYED_BY = ("name", "containerName", "Type", "PolicyName")

#: What a new deployment is shown as in a row's fields.
NEW_DEPLOYMENT = "new deployment"


class Change(BaseModel):
    """One resource and what a build does to it; ``fields``: name -> [old, new] (update/replace)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    name: str
    action: Action
    fields: dict[str, list[Any]] = {}
    note: str = ""

    def row(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------
# The generic comparison


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ""


def _key(items: list[Any]) -> str | None:
    """The key that identifies the objects of a list, if every object has it."""
    if not items or not all(isinstance(item, Mapping) for item in items):
        return None
    return next((k for k in KEYED_BY if all(k in item for item in items)), None)


def compare(desired: Any, actual: Any, path: str = "") -> dict[str, tuple[Any, Any]]:
    """Path -> (actual, desired) for every field of ``desired`` that ``actual`` does not have
    with the same value. Objects: only the desired keys (AWS's additions do not count); lists of
    named objects: matched by name, an extra one in ``actual`` counts; other lists: in order, or
    as sets for UNORDERED."""
    if desired is None:
        return {} if _empty(actual) else {path: (actual, None)}
    if isinstance(desired, Reset):  # a removed override: ECS's default, or nothing
        return {} if _empty(actual) or actual == desired.value else {path: (actual, desired.value)}
    if isinstance(desired, Mapping):
        have = actual if isinstance(actual, Mapping) else {}
        if not isinstance(actual, Mapping) and not _empty(actual):
            return {path: (actual, desired)}
        found: dict[str, tuple[Any, Any]] = {}
        for key, value in desired.items():
            found |= compare(value, have.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(desired, list):
        have_list = actual if isinstance(actual, list) else []
        leaf = path.rsplit(".", 1)[-1]
        key = _key(desired) if desired else _key(have_list)
        # Matched by key only when both sides are keyed by it (or one side is empty): a list
        # the spec renders without the key is compared by position.
        if key is not None and (_key(have_list) == key or not have_list):
            wanted = {item[key]: item for item in desired}
            present = {item[key]: item for item in have_list}
            found = {}
            for name in list(wanted) + [n for n in present if n not in wanted]:
                found |= compare(wanted.get(name), present.get(name), f"{path}[{name}]")
            return found
        if leaf in UNORDERED:
            same = sorted(map(str, desired)) == sorted(map(str, have_list))
            return {} if same else {path: (actual, desired)}
        if len(desired) != len(have_list):
            return {path: (actual, desired)}
        found = {}
        for index, (want, got) in enumerate(zip(desired, have_list, strict=True)):
            found |= compare(want, got, f"{path}[{index}]")
        return found
    return {} if desired == actual else {path: (actual, desired)}


#: A value longer than this (as JSON) is shown cut, with its length (rows stay small: an
#: environment variable may hold 32 KiB).
MAX_SHOWN = 200


def _shown(value: Any) -> Any:
    """A value as a row shows it: JSON-able; a long one cut to MAX_SHOWN characters."""
    text = json.dumps(value, default=str)
    if len(text) <= MAX_SHOWN:
        return json.loads(text)
    return f"{text[:MAX_SHOWN]}… ({len(text)} characters)"


def fields(found: dict[str, tuple[Any, Any]], rename: Mapping[str, str]) -> dict[str, list[Any]]:
    """Rows' field names: each prefix of ``rename`` (longest first) replaced by its spec name."""
    out: dict[str, list[Any]] = {}
    prefixes = sorted(rename, key=len, reverse=True)
    for path, (old, new) in found.items():
        name = path
        for prefix in prefixes:
            if path == prefix or path.startswith((prefix + ".", prefix + "[")):
                name = rename[prefix] + path[len(prefix) :]
                break
        out[name.lstrip(".")] = [_shown(old), _shown(new)]
    return out


# ---------------------------------------------------------------------------------------------
# Tags: the spec's own (envbuild's envbuild:* tags and AWS's aws:* are never compared: the
# build tag is each build's own ledger)

#: Tag key prefixes that are not the spec's.
NOT_SPEC_TAGS = ("envbuild:", "aws:")


def spec_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith(NOT_SPEC_TAGS)}


def tag_fields(wanted: Mapping[str, str], actual: Mapping[str, str]) -> dict[str, list[Any]]:
    """``tags.KEY``: [old, new] for each of the spec's tags that differs (None: absent)."""
    want, have = spec_tags(wanted), spec_tags(actual)
    return {
        f"tags.{key}": [have.get(key), want.get(key)]
        for key in sorted(set(want) | set(have))
        if want.get(key) != have.get(key)
    }


def tag_request(change: Change) -> tuple[dict[str, str], list[str]]:
    """(tags to set, keys to remove) for the ``tags.*`` fields of a row."""
    add: dict[str, str] = {}
    remove: list[str] = []
    for name, (_old, new) in change.fields.items():
        if not name.startswith("tags."):
            continue
        key = name.removeprefix("tags.")
        if new is None:
            remove.append(key)
        else:
            add[key] = str(new)
    return add, remove


def apply_tags(
    change: Change,
    tag: Callable[[dict[str, str]], object],
    untag: Callable[[list[str]], object],
) -> None:
    """Send a row's ``tags.*`` fields: ``tag`` with the tags to set, ``untag`` with the keys to
    remove (each called only when it has something to do)."""
    add, remove = tag_request(change)
    if add:
        tag(add)
    if remove:
        untag(remove)


# ---------------------------------------------------------------------------------------------
# Per resource


def namespace_tags_change(
    name: str, namespace_id: str, wanted: Mapping[str, str], actual: Mapping[str, str]
) -> Change:
    """A namespace envbuild manages: ``update`` (fields ``tags.KEY``: Cloud Map TagResource /
    UntagResource) when the spec's tags differ, else unchanged (note: its id)."""
    found = tag_fields(wanted, actual)
    if found:
        return Change(kind="namespace", name=name, action="update", fields=found, note=namespace_id)
    return Change(kind="namespace", name=name, action="unchanged", note=namespace_id)


def registry_change(
    service: Service,
    desired_registry: dict[str, Any],
    actual: Mapping[str, Any] | None,
    *,
    managed: bool,
    tags: tuple[Mapping[str, str], Mapping[str, str]] | None = None,
) -> Change:
    """A Cloud Map service: create, or update (DnsConfig.DnsRecords: TTL) if envbuild manages
    it; one it does not manage is adopted as it is."""
    if actual is None:
        return Change(kind="registry", name=service.name, action="create")
    comparable = {
        "DnsConfig": {"DnsRecords": desired_registry["DnsConfig"]["DnsRecords"]},
    }
    found = fields(
        compare(comparable, actual),
        {"DnsConfig.DnsRecords[A].TTL": "dnsTtl", "DnsConfig.DnsRecords": "dnsRecords"},
    )
    if not managed:
        note = "exists, not created by envbuild: used as it is"
        if found:
            note += " (" + ", ".join(f"{k} {v[0]}, spec {v[1]}" for k, v in found.items()) + ")"
        return Change(kind="registry", name=service.name, action="adopt", note=note)
    if tags is not None:  # (wanted, actual)
        found |= tag_fields(*tags)
    if found:
        return Change(kind="registry", name=service.name, action="update", fields=found)
    return Change(kind="registry", name=service.name, action="unchanged")


def _task_definition_names(service: Service) -> dict[str, str]:
    main = f"containerDefinitions[{service.name}]"
    return {
        main: "",
        f"{main}.portMappings[0].containerPort": "port",
        f"{main}.environment": "environment",
    }


def task_definition_fields(
    service: Service, desired_definition: dict[str, Any], actual: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """The fields of a registered revision that differ from the rendered one, named as in the
    spec (image, port, environment[NAME].value, cpu ...)."""
    found = compare(desired_definition, actual)
    named = fields(found, _task_definition_names(service))
    return {_environment_name(name): value for name, value in named.items()}


def _environment_name(name: str) -> str:
    """environment[NAME].value / environment[NAME] -> environment.NAME"""
    if name.startswith("environment[") and "]" in name:
        return "environment." + name[len("environment[") : name.index("]")]
    return name


#: The note of a task definition row that only retags the revision in use.
RETAG_NOTE = "tags the revision in use (TagResource / UntagResource; no new revision)"


def revision_tags_change(
    revision: str, wanted: Mapping[str, str], actual: Mapping[str, str]
) -> Change:
    """A revision's tags: ``update`` (fields ``tags.KEY``) when the spec's differ, applied to
    the revision itself (a revision's tags can change, its definition cannot), or unchanged."""
    found = tag_fields(wanted, actual)
    if found:
        return Change(
            kind="taskDefinition", name=revision, action="update", fields=found, note=RETAG_NOTE
        )
    return Change(kind="taskDefinition", name=revision, action="unchanged")


def task_definition_change(
    service: Service,
    environment: str,
    desired_definition: dict[str, Any],
    latest: Mapping[str, Any] | None,
    tags: Mapping[str, str] | None = None,
) -> Change:
    """The family's latest ACTIVE revision against the rendered one: create (no revision),
    unchanged (``name`` family:revision) or update (a new revision; ``fields`` what differs).
    ``tags`` (the spec's, against the revision's ``tags`` as DescribeTaskDefinition TAGS
    returns them): an otherwise unchanged revision whose tags differ is retagged
    (``revision_tags_change``); a new revision is registered with the spec's tags."""
    family = service.family(environment)
    if latest is None:
        return Change(kind="taskDefinition", name=family, action="create")
    current = f"{family}:{latest['revision']}"
    found = task_definition_fields(service, desired_definition, latest)
    if not found and tags is not None:
        have = {t.get("key", ""): t.get("value", "") for t in latest.get("tags", [])}
        return revision_tags_change(current, tags, have)
    if not found:
        return Change(kind="taskDefinition", name=current, action="unchanged")
    return Change(
        kind="taskDefinition",
        name=family,
        action="update",
        fields=found,
        note=f"registers a new revision after {current}",
    )


def log_group_change(
    name: str,
    retention_days: int | None,
    actual: Mapping[str, Any] | None,
    *,
    managed: bool | None,
    tags: tuple[Mapping[str, str], Mapping[str, str]] | None = None,
) -> Change:
    """A log group: create, or update its retention (``logRetentionDays``; None: never
    expires, DescribeLogGroups then has no retentionInDays) and the spec's tags (``tags``:
    wanted, actual) if envbuild manages it; one it does not manage is never changed.
    ``managed`` None: not known."""
    if actual is None:
        return Change(kind="logGroup", name=name, action="create")
    have = actual.get("retentionInDays")
    found: dict[str, list[Any]] = {}
    if have != retention_days:
        found["logRetentionDays"] = [have, retention_days]
    if tags is not None:
        found |= tag_fields(*tags)
    if not found:
        return Change(kind="logGroup", name=name, action="unchanged")
    if managed is False:
        return Change(
            kind="logGroup",
            name=name,
            action="adopt",
            note="exists, not created by envbuild: left as it is ("
            + ", ".join(f"{k} {v[0]}, spec {v[1]}" for k, v in found.items())
            + ")",
        )
    return Change(kind="logGroup", name=name, action="update", fields=found)


def short_task_definition(arn: str) -> str:
    """'family:revision' of a task definition ARN (or of 'family:revision' itself)."""
    return arn.rsplit("/", 1)[-1]


def _failed_deployment(actual: Mapping[str, Any]) -> bool:
    """ECS's circuit breaker failed the service's last deployment and nothing replaced it."""
    deployments = list(actual.get("deployments", []))
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    return primary is not None and primary.get("rolloutState") == "FAILED"


ECS_SERVICE_NAMES = {
    "networkConfiguration.awsvpcConfiguration": "network",
}


def ecs_service_change(
    service: Service,
    desired_service: dict[str, Any],
    actual: Mapping[str, Any] | None,
    *,
    managed: bool,
    redeploy: bool = False,
    tags: Mapping[str, str] | None = None,
    cannot_unset: list[str] | None = None,
) -> Change:
    """An ECS service: create (none, or INACTIVE), update (UpdateService of ``fields``; a field
    ``deployment`` asks for forceNewDeployment: the last deployment FAILED, or ``redeploy``),
    unchanged; one envbuild does not manage is a conflict (steps/ownership.py finds it first).
    ``cannot_unset``: removed overrides.service fields ECS cannot reset: named in the note
    while the service still has them."""
    name = service.ecs_service_name
    if actual is None or actual.get("status") == "INACTIVE":
        return Change(kind="ecsService", name=name, action="create")
    if not managed:
        return Change(
            kind="ecsService",
            name=name,
            action="conflict",
            note="exists, not created by envbuild: envbuild does not modify it",
        )
    have = {**actual, "taskDefinition": short_task_definition(str(actual.get("taskDefinition")))}
    found = fields(compare(desired_service, have), ECS_SERVICE_NAMES)
    # serviceRegistries: the ARN of the registry is the identity of the DNS name; a service
    # attached elsewhere is not envbuild's to move (ServiceConflict), so it is not an update.
    found = {k: v for k, v in found.items() if not k.startswith("serviceRegistries")}
    if _failed_deployment(actual):
        found["deployment"] = ["FAILED", NEW_DEPLOYMENT]
    elif redeploy:
        found["deployment"] = ["(redeploy)", NEW_DEPLOYMENT]
    if tags is not None:  # the spec's tags against the service's (DescribeServices TAGS)
        have_tags = {t.get("key", ""): t.get("value", "") for t in actual.get("tags", [])}
        found |= tag_fields(tags, have_tags)
    kept = [k for k in cannot_unset or () if not _empty(actual.get(k))]
    kept_note = (
        "; ".join(
            f"overrides.service.{k} removed from the spec: ECS cannot unset it, it stays"
            f" {json.dumps(actual.get(k), default=str)}"
            for k in kept
        )
        if kept
        else ""
    )
    if not found:
        return Change(
            kind="ecsService",
            name=name,
            action="unchanged",
            note=f"on {have['taskDefinition']}" + (f"; {kept_note}" if kept_note else ""),
        )
    return Change(kind="ecsService", name=name, action="update", fields=found, note=kept_note)


def update_request(change: Change, desired_service: dict[str, Any]) -> dict[str, Any]:
    """The UpdateService fields for an ``update`` row: the top-level fields that differ (the
    spec's value of each), forceNewDeployment for ``deployment``."""
    top = {"network": "networkConfiguration"}
    request: dict[str, Any] = {}
    for name in change.fields:
        if name == "deployment":
            request["forceNewDeployment"] = True
            continue
        head = name.split(".", 1)[0].split("[", 1)[0]
        field = top.get(head, head)
        if field in desired_service:
            request[field] = desired_service[field]
    if "capacityProviderStrategy" in request:
        # Back to the launch type: "Pass an empty list in the capacityProviderStrategy
        # parameter"; and the change "doesn't trigger a new service deployment" by itself.
        if request["capacityProviderStrategy"] is None:
            request["capacityProviderStrategy"] = []
        request["forceNewDeployment"] = True
    return request


# ---------------------------------------------------------------------------------------------
# Application Auto Scaling (the spec's autoscaling)

#: Policy name suffix -> the spec field of its target value.
POLICY_FIELDS = {"-cpu": "targetCpuPercent", "-memory": "targetMemoryPercent"}
#: The scalable target's fields, named as in the spec.
TARGET_FIELDS = {"MinCapacity": "minCount", "MaxCapacity": "maxCount"}
TARGET_VALUE = "TargetTrackingScalingPolicyConfiguration.TargetValue"


def own_policy_field(ecs_service_name: str, policy_name: str) -> str | None:
    """The spec field of a policy envbuild names (<ecs service>-cpu / -memory), else None."""
    for suffix, field in POLICY_FIELDS.items():
        if policy_name == ecs_service_name + suffix:
            return field
    return None


def autoscaling_change(
    ecs_service_name: str,
    target: Mapping[str, Any] | None,
    policies: list[dict[str, Any]],
    actual_target: Mapping[str, Any] | None,
    actual_policies: Mapping[str, Mapping[str, Any]],
) -> Change | None:
    """An ECS service's scalable target and target-tracking policies (desired.scalable_target
    and desired.scaling_policies against DescribeScalableTargets / DescribeScalingPolicies):
    create, update (fields ``minCount``, ``maxCount``, ``targetCpuPercent``,
    ``targetMemoryPercent``: [old, new], None: absent), remove (the spec dropped autoscaling:
    DeregisterScalableTarget, which deletes the policies) or unchanged; None when neither the
    spec nor the account has a target. Only the policies envbuild names are compared."""
    name = ecs_service_name
    if target is None:
        if actual_target is None:
            return None
        return Change(
            kind="autoscaling",
            name=name,
            action="remove",
            note="autoscaling no longer in the spec: the scalable target is deregistered"
            " (with its policies); the service keeps its current count",
        )
    found: dict[str, list[Any]] = {}
    have_target = actual_target or {}
    for key, field in TARGET_FIELDS.items():
        if have_target.get(key) != target[key]:
            found[field] = [have_target.get(key), target[key]]
    wanted = {str(p["PolicyName"]): p for p in policies}
    have = {n: p for n, p in actual_policies.items() if own_policy_field(name, n) is not None}
    for policy_name in sorted(set(wanted) | set(have)):
        field = own_policy_field(name, policy_name) or policy_name
        want, got = wanted.get(policy_name), have.get(policy_name)
        if want is None:
            old = _target_value(got)
            found[field] = [old, None]
        elif got is None or compare(want, got):
            found[field] = [_target_value(got), _target_value(want)]
    if actual_target is None:
        return Change(kind="autoscaling", name=name, action="create", fields=found)
    if found:
        return Change(kind="autoscaling", name=name, action="update", fields=found)
    return Change(kind="autoscaling", name=name, action="unchanged")


def _target_value(policy: Mapping[str, Any] | None) -> Any:
    if policy is None:
        return None
    value = policy.get("TargetTrackingScalingPolicyConfiguration", {}).get("TargetValue")
    return int(value) if isinstance(value, float) and value.is_integer() else value


# ---------------------------------------------------------------------------------------------
# Static instances


def instance_key(service: str, instance_id: str) -> str:
    """How the environment record names a static instance: '<service>/<instance id>'."""
    return f"{service}/{instance_id}"


def instance_changes(
    service: Service,
    registered: Mapping[str, Mapping[str, str]],
    recorded: set[str],
) -> list[Change]:
    """The service's static instances: create / update (attributes differ) / unchanged, and
    remove for an instance envbuild registered (in the environment record) that the spec no
    longer lists. ``registered``: instance id -> attributes of the registry's instances."""
    rows: list[Change] = []
    wanted: dict[str, StaticInstance] = {i.id: i for i in service.instances}
    for instance_id, instance in wanted.items():
        name = instance_key(service.name, instance_id)
        have = registered.get(instance_id)
        want = desired_attributes(service, instance)
        if have is None:
            rows.append(Change(kind="instance", name=name, action="create"))
        elif dict(have) != want:
            rows.append(
                Change(
                    kind="instance",
                    name=name,
                    action="update",
                    fields={
                        f"attributes.{k}": [have.get(k), want.get(k)]
                        for k in sorted(set(have) | set(want))
                        if have.get(k) != want.get(k)
                    },
                )
            )
        else:
            rows.append(Change(kind="instance", name=name, action="unchanged"))
    for instance_id in sorted(registered):
        name = instance_key(service.name, instance_id)
        if instance_id not in wanted and name in recorded:
            rows.append(
                Change(
                    kind="instance",
                    name=name,
                    action="remove",
                    note="static instance no longer in the spec",
                )
            )
    return rows


# ---------------------------------------------------------------------------------------------
# The environment's place


def place_changes(spec: EnvironmentSpec, recorded: EnvironmentRecord | None) -> list[Change]:
    """``replace`` rows for the fields that place the environment (cluster, namespace name,
    VPC) when the spec names another place than the environment record holds resources in: a
    build refuses them (EnvironmentMoved, at Preflight, before any change) until the
    environment is torn down."""
    if recorded is None or not recorded.holds_placed_resources():
        return []
    rows: list[Change] = []
    for field, kind, old, new in (
        ("cluster", "ecsService", recorded.cluster, spec.cluster),
        ("namespace.name", "namespace", recorded.namespace_name, spec.namespace.name),
        ("namespace.vpcId", "namespace", recorded.vpc_id, spec.namespace.vpcId),
    ):
        if old is None or (field == "cluster" and cluster_name(old) == cluster_name(new)):
            continue
        if old == new:
            continue
        rows.append(
            Change(
                kind=kind,  # type: ignore[arg-type]
                name=old,
                action="replace",
                fields={field: [old, new]},
                note=(
                    f"the environment is recorded with {field} {old}: a build refuses to move"
                    f" it (EnvironmentMoved); tear it down (envbuild teardown SPEC takes the"
                    f" place from the record), then build it with {field} {new}"
                ),
            )
        )
    return rows


def counts(rows: list[Change]) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in rows:
        found[row.action] = found.get(row.action, 0) + 1
    return found
