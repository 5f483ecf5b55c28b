"""The one diff (steps/diff.py): every spec field is compared, or named here as not a field
of a resource (with the reason). A field added to the spec model that the diff ignores fails
``test_every_spec_field_is_compared_by_the_diff_or_named_as_identity_or_run_option``."""

from __future__ import annotations

from typing import Any

import pytest

from envbuild_lambda.aws import Caller
from envbuild_lambda.spec import EnvironmentSpec, Service, StaticInstance, normalize, parse_spec
from envbuild_lambda.steps import desired, diff

from .conftest import ACCOUNT, workshop_spec

CALLER = Caller(partition="aws", region="us-east-1", account_id=ACCOUNT)

#: Spec fields that are not a field of any resource, and what they are instead.
NOT_RESOURCE_FIELDS = {
    "environment": "the environment's identity (names, tags, the record's key)",
    "namespace": "the environment's place: a change is a replace row (diff.place_changes)",
    "cluster": "the environment's place: a change is a replace row (diff.place_changes)",
    "onFailure": "what a failed build does",
    "prune": "whether removed services are removed (remove/keep rows)",
    "plan": "a dry run",
    "redeploy": "a run option: a new deployment (the deployment field of ECS service rows)",
    "verify": "how the build verifies DNS",
    "services[].name": "the service's identity: another name is another service",
    # issue 17: fields of resources the three compared requests do not hold
    "tags": "resource tags: diff.tag_fields (test_tag_fields_cover_added_changed_removed)",
    "services[].tags": "resource tags: diff.tag_fields (test_tag_fields_cover_added_changed_removed)",
    "logRetentionDays": "the log groups' retention: diff.log_group_change (desired.log_retention)",
    "services[].logRetentionDays": "the log group's retention: diff.log_group_change",
    "services[].autoscaling": "Application Auto Scaling's target and policies: diff.autoscaling_change (test_autoscaling_rows_*); with it desiredCount is not compared",
    "services[].overrides": "merged last into the rendered requests and compared while set; a key removed is rendered as removed from the environment record's keys (test_removed_overrides_*)",
}

#: A valid other value for each field the diff compares (top level, then per service).
EDITS: dict[str, Any] = {
    "network.subnets": ["subnet-0000000000000000f"],
    "network.securityGroups": ["sg-0000000000000000f"],
    "network.assignPublicIp": "ENABLED",
    "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/other-execution",
    "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/other-task",
    "services[].image": "nginx:1.27",
    "services[].port": 8080,
    "services[].desiredCount": 5,
    "services[].cpu": "512",
    "services[].memory": "1024",
    "services[].environment": {"NEW": "value"},
    "services[].dnsTtl": 15,
    "services[].instances": [{"id": "legacy", "ipv4": "10.0.3.3"}],
    # issue 17
    "services[].command": ["nginx", "-g", "daemon off;"],
    "services[].entryPoint": ["/entry.sh"],
    "services[].secrets": {"DB": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db-AbCdEf"},
    "services[].healthCheck": {"command": ["CMD", "true"]},
    "services[].sidecars": [{"name": "side", "image": "busybox", "essential": False}],
    "services[].dependsOn": [{"container": "side", "condition": "START"}],
    "services[].cpuArchitecture": "ARM64",
    "services[].capacityProviders": [{"capacityProvider": "FARGATE_SPOT"}],
    "services[].enableExecuteCommand": True,
    "services[].dnsRecords": ["A", "SRV"],
    "services[].deployment": {"minimumHealthyPercent": 50},
    "services[].platformVersion": "1.4.0",
    "services[].network": {
        "subnets": ["subnet-0000000000000000f"],
        "securityGroups": ["sg-0000000000000000f"],
    },
}


def spec() -> EnvironmentSpec:
    return normalize(parse_spec(workshop_spec()), partition="aws", account_id=ACCOUNT)


def fields_of(model: type[Any], prefix: str = "") -> list[str]:
    """The spec's leaf fields as paths (services[].image, network.subnets, ...)."""
    found: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = info.annotation
        nested = getattr(annotation, "model_fields", None)
        if path == "services":
            found += fields_of(Service, "services[].")
        elif nested is not None and path in ("network",):
            found += fields_of(annotation, f"{path}.")
        else:
            found.append(path)
    return found


def rendered(s: EnvironmentSpec) -> list[tuple[str, dict[str, Any]]]:
    """Every request the spec renders, by resource."""
    out: list[tuple[str, dict[str, Any]]] = []
    for service in s.services:
        out.append((f"registry {service.name}", desired.registry(s, service)))
        out.append(
            (
                f"taskDefinition {service.name}",
                desired.task_definition(
                    CALLER, s.environment, service, s.executionRoleArn or "", s.taskRoleArn or ""
                ),
            )
        )
        out.append(
            (
                f"ecsService {service.name}",
                desired.ecs_service(CALLER, s, service, "srv-1", f"{service.name}:1"),
            )
        )
    return out


def edited(s: EnvironmentSpec, path: str, value: Any) -> EnvironmentSpec:
    raw = s.model_dump(mode="json", exclude_none=True)
    if path.startswith("services[]."):
        raw["services"][0][path.split(".", 1)[1]] = value
        if path == "services[].cpu":  # a valid Fargate pair
            raw["services"][0]["memory"] = "1024"
        if path == "services[].dependsOn":  # the container it waits for
            raw["services"][0]["sidecars"] = [{"name": "side", "image": "i", "essential": False}]
    elif "." in path:
        head, leaf = path.split(".", 1)
        raw[head][leaf] = value
    else:
        raw[path] = value
    return parse_spec(raw)


def test_every_spec_field_is_compared_by_the_diff_or_named_as_identity_or_run_option() -> None:
    paths = fields_of(EnvironmentSpec)
    uncovered = [p for p in paths if p not in EDITS and p not in NOT_RESOURCE_FIELDS]
    assert uncovered == [], f"spec fields the diff does not cover: {uncovered}"
    assert sorted(set(EDITS) | set(NOT_RESOURCE_FIELDS)) == sorted(
        p for p in set(EDITS) | set(NOT_RESOURCE_FIELDS) if p in paths
    ), "a field named here is no longer in the spec"


@pytest.mark.parametrize("path", [p for p in EDITS if p != "services[].instances"])
def test_editing_a_field_changes_a_rendered_request_and_the_diff_reports_it(path: str) -> None:
    before = spec()
    after = edited(before, path, EDITS[path])
    old = dict(rendered(before))
    new = dict(rendered(after))
    changed = {
        resource: diff.compare(new[resource], desired.sent(old[resource])) for resource in new
    }
    changed = {resource: found for resource, found in changed.items() if found}
    assert changed, f"{path}: no rendered request differs"
    # and the reverse edit too (a field set back, or removed, is seen)
    back = {resource: diff.compare(old[resource], desired.sent(new[resource])) for resource in old}
    assert any(back.values())


def test_a_static_instance_edit_is_create_update_or_remove() -> None:
    service = (
        spec()
        .services[0]
        .model_copy(update={"instances": [StaticInstance(id="a", ipv4="10.0.3.1")]})
    )
    registered = {
        "a": {"AWS_INSTANCE_IPV4": "10.0.3.9"},
        "gone": {"AWS_INSTANCE_IPV4": "10.0.3.2"},
        "theirs": {"AWS_INSTANCE_IPV4": "10.0.3.3"},
    }
    rows = diff.instance_changes(service, registered, {"web/a", "web/gone"})
    assert [(r.name, r.action, r.fields) for r in rows] == [
        ("web/a", "update", {"attributes.AWS_INSTANCE_IPV4": ["10.0.3.9", "10.0.3.1"]}),
        ("web/gone", "remove", {}),  # registered by envbuild (recorded), no longer in the spec
    ]  # "theirs" is not envbuild's: never a row, never removed


def test_aws_defaults_and_additions_are_not_differences() -> None:
    s = spec()
    wanted = desired.task_definition(CALLER, "workshop", s.services[0], "arn:e", "arn:t")
    described = desired.sent(wanted)
    container = described["containerDefinitions"][0]
    container["portMappings"][0]["hostPort"] = container["portMappings"][0]["containerPort"]
    container["cpu"] = 0
    container["mountPoints"] = []
    described["revision"] = 4
    described["status"] = "ACTIVE"
    assert diff.compare(wanted, described) == {}
    # an environment variable AWS holds that the spec no longer sets is a difference
    container["environment"].append({"name": "OLD", "value": "x"})
    assert diff.task_definition_fields(s.services[0], wanted, described) == {
        "environment.OLD": [{"name": "OLD", "value": "x"}, None]
    }


def test_long_values_are_cut_in_rows() -> None:
    found = diff.fields({"x": ("a" * 5000, "b")}, {})
    assert found["x"][0].endswith("(5002 characters)")
    assert len(found["x"][0]) < 260


def test_a_list_keyed_only_in_the_account_is_compared_by_position() -> None:
    """serviceRegistries without SRV renders no containerName; ECS may describe one."""
    desired_list = [{"registryArn": "arn:r"}]
    described = [{"registryArn": "arn:r", "containerName": "web", "containerPort": 80}]
    assert diff.compare({"serviceRegistries": desired_list}, {"serviceRegistries": described}) == {}
    # a removed environment: every variable named
    assert diff.compare({"environment": []}, {"environment": [{"name": "A", "value": "1"}]}) == {
        "environment[A]": ({"name": "A", "value": "1"}, None)
    }


def test_static_instances_of_a_registry_with_srv_are_compared_with_their_port() -> None:
    service = (
        spec()
        .services[0]
        .model_copy(
            update={
                "dnsRecords": ["A", "SRV"],
                "instances": [StaticInstance(id="a", ipv4="10.0.3.1")],
            }
        )
    )
    registered = {"a": {"AWS_INSTANCE_IPV4": "10.0.3.1", "AWS_INSTANCE_PORT": str(service.port)}}
    assert [r.action for r in diff.instance_changes(service, registered, {"web/a"})] == [
        "unchanged"
    ]


def test_tag_fields_cover_added_changed_removed_and_never_envbuilds_own() -> None:
    wanted = {"team": "data", "cost": "b", "envbuild:build": "arn:new"}
    actual = {"cost": "a", "old": "x", "envbuild:build": "arn:old", "aws:cloudformation:x": "y"}
    found = diff.tag_fields(wanted, actual)
    assert found == {
        "tags.cost": ["a", "b"],
        "tags.old": ["x", None],
        "tags.team": [None, "data"],
    }
    row = diff.Change(kind="ecsService", name="s", action="update", fields=found)
    assert diff.tag_request(row) == ({"cost": "b", "team": "data"}, ["old"])


def test_log_retention_and_tags_of_a_group_envbuild_does_not_manage_are_left() -> None:
    group = {"logGroupName": "/ecs/x", "retentionInDays": 7}
    row = diff.log_group_change("/ecs/x", 30, group, managed=False, tags=({"a": "1"}, {}))
    assert (row.action, row.fields) == ("adopt", {})
    assert "logRetentionDays 7, spec 30" in row.note
    row = diff.log_group_change("/ecs/x", 30, group, managed=True, tags=({"a": "1"}, {}))
    assert (row.action, row.fields) == (
        "update",
        {"logRetentionDays": [7, 30], "tags.a": [None, "1"]},
    )


def _scaled(**autoscaling: Any) -> tuple[EnvironmentSpec, Service]:
    s = spec()
    raw = s.model_dump(mode="json", exclude_none=True)
    raw["services"][0]["desiredCount"] = 2
    raw["services"][0]["autoscaling"] = autoscaling
    edited_spec = normalize(parse_spec(raw), partition="aws", account_id=ACCOUNT)
    return edited_spec, edited_spec.services[0]


def _autoscaling_row(
    s: EnvironmentSpec, service: Service, target: Any, policies: Any
) -> diff.Change | None:
    return diff.autoscaling_change(
        service.ecs_service_name,
        desired.scalable_target(s, service),
        desired.scaling_policies(s, service),
        target,
        policies,
    )


def test_autoscaling_rows_create_update_unchanged_and_remove() -> None:
    s, service = _scaled(minCount=2, maxCount=4, targetCpuPercent=60)
    # none in the account: create, its fields named as in the spec
    row = _autoscaling_row(s, service, None, {})
    assert row is not None
    assert (row.kind, row.name, row.action) == ("autoscaling", "web-service", "create")
    assert row.fields == {
        "minCount": [None, 2],
        "maxCount": [None, 4],
        "targetCpuPercent": [None, 60],
    }
    # as the account describes what was sent: unchanged (AWS's additions do not count)
    target = {**desired.scalable_target(s, service), "RoleARN": "arn:r", "CreationTime": 1}  # type: ignore[dict-item]
    policies = {
        p["PolicyName"]: {**p, "PolicyARN": "arn:p", "Alarms": []}
        for p in desired.scaling_policies(s, service)
    }
    row = _autoscaling_row(s, service, target, policies)
    assert row is not None
    assert row.action == "unchanged"
    # another team's policy on the target is never compared (nor deleted)
    theirs = {**policies, "their-step-policy": {"PolicyName": "their-step-policy"}}
    row = _autoscaling_row(s, service, target, theirs)
    assert row is not None
    assert row.action == "unchanged"
    # edited: max, cpu target changed, memory target added
    s2, service2 = _scaled(minCount=2, maxCount=8, targetCpuPercent=50, targetMemoryPercent=70)
    row = _autoscaling_row(s2, service2, target, policies)
    assert row is not None
    assert (row.action, row.fields) == (
        "update",
        {
            "maxCount": [4, 8],
            "targetCpuPercent": [60, 50],
            "targetMemoryPercent": [None, 70],
        },
    )
    # the memory target dropped again: [70, None] (DeleteScalingPolicy)
    both = {p["PolicyName"]: p for p in desired.scaling_policies(s2, service2)}
    row = _autoscaling_row(s, service, target, both)
    assert row is not None
    assert row.fields == {"targetCpuPercent": [50, 60], "targetMemoryPercent": [70, None]}
    # autoscaling removed from the spec: remove (DeregisterScalableTarget); none anywhere: no row
    plain = spec()
    assert _autoscaling_row(plain, plain.services[0], target, policies) == diff.Change(
        kind="autoscaling",
        name="web-service",
        action="remove",
        note=_autoscaling_row(plain, plain.services[0], target, policies).note,  # type: ignore[union-attr]
    )
    assert _autoscaling_row(plain, plain.services[0], None, {}) is None


def test_removed_overrides_render_as_absent_or_the_ecs_default_and_the_diff_reports_them() -> None:
    from envbuild_lambda.steps.record import EnvironmentRecord

    s = spec()
    service = s.services[0]
    record = EnvironmentRecord(
        environment="workshop",
        override_keys=frozenset(
            {
                "web/taskDefinition/ephemeralStorage",
                "web/container/stopTimeout",
                "web/service/healthCheckGracePeriodSeconds",
                "web/service/availabilityZoneRebalancing",
                "api/container/stopTimeout",  # another service's
            }
        ),
    )
    removed = record.removed_overrides(service)
    assert removed == {
        "taskDefinition": frozenset({"ephemeralStorage"}),
        "container": frozenset({"stopTimeout"}),
        "service": frozenset({"healthCheckGracePeriodSeconds", "availabilityZoneRebalancing"}),
    }
    # the revision as registered with the overrides, against the rendering without them
    with_overrides = desired.sent(
        desired.task_definition(CALLER, "workshop", service, "arn:e", "arn:t")
    )
    with_overrides["ephemeralStorage"] = {"sizeInGiB": 30}
    with_overrides["containerDefinitions"][0]["stopTimeout"] = 30
    wanted = desired.task_definition(CALLER, "workshop", service, "arn:e", "arn:t", removed)
    assert diff.task_definition_fields(service, wanted, with_overrides) == {
        "ephemeralStorage": [{"sizeInGiB": 30}, None],
        "stopTimeout": [30, None],
    }
    assert "ephemeralStorage" not in desired.sent(wanted)
    # the ECS service: reset to ECS's default where UpdateService can, named otherwise
    want_service = desired.ecs_service(CALLER, s, service, "srv-1", "workshop_web:1", removed)
    assert desired.sent(want_service)["healthCheckGracePeriodSeconds"] == 0
    assert "availabilityZoneRebalancing" not in want_service
    actual = {
        **desired.sent(desired.ecs_service(CALLER, s, service, "srv-1", "workshop_web:1")),
        "status": "ACTIVE",
        "healthCheckGracePeriodSeconds": 30,
        "availabilityZoneRebalancing": "DISABLED",
    }
    row = diff.ecs_service_change(
        service,
        want_service,
        actual,
        managed=True,
        cannot_unset=desired.cannot_unset(removed),
    )
    assert (row.action, row.fields) == ("update", {"healthCheckGracePeriodSeconds": [30, 0]})
    assert "availabilityZoneRebalancing removed from the spec: ECS cannot unset it" in row.note
    assert diff.update_request(row, want_service) == {
        "healthCheckGracePeriodSeconds": desired.Reset(0)
    }
    # once reset (ECS describes 0, or nothing): unchanged
    for value in (0, None):
        row = diff.ecs_service_change(
            service, want_service, {**actual, "healthCheckGracePeriodSeconds": value}, managed=True
        )
        assert row.action == "unchanged"
    # a key still in the spec is not removed
    kept = service.model_copy(
        update={"overrides": service.overrides.model_copy(update={"container": {"stopTimeout": 5}})}
    )
    assert "container" not in record.removed_overrides(kept)


def test_what_a_rollback_restores_of_a_scalable_target_is_its_limits_and_envbuilds_policies() -> (
    None
):
    from envbuild_lambda.steps import autoscaling

    s, service = _scaled(minCount=2, maxCount=4, targetCpuPercent=60)
    target = {**desired.scalable_target(s, service), "RoleARN": "arn:r"}  # type: ignore[dict-item]
    policies = {
        p["PolicyName"]: {**p, "PolicyARN": "arn:p", "Alarms": []}
        for p in desired.scaling_policies(s, service)
    }
    policies["their-step-policy"] = {"PolicyName": "their-step-policy"}
    assert autoscaling.before(service, target, policies) == {
        "MinCapacity": 2,
        "MaxCapacity": 4,
        "policies": desired.scaling_policies(s, service),  # PutScalingPolicy's request again
    }
    assert autoscaling.before(service, None, {}) is None  # none before: deregistered


def test_tag_edits_of_the_namespace_and_of_an_unchanged_revision_are_retag_rows() -> None:
    s = spec()
    service = s.services[0]
    row = diff.namespace_tags_change(
        "workshop.local", "ns-1", {"team": "a", "envbuild:build": "new"}, {"envbuild:build": "x"}
    )
    assert (row.kind, row.action, row.fields) == ("namespace", "update", {"tags.team": [None, "a"]})
    assert diff.namespace_tags_change("n", "ns-1", {"a": "1"}, {"a": "1"}).action == "unchanged"
    wanted = desired.task_definition(CALLER, "workshop", service, "arn:e", "arn:t")
    latest = {
        **desired.sent(wanted),
        "revision": 3,
        "tags": [{"key": "team", "value": "old"}, {"key": "envbuild:managed", "value": "true"}],
    }
    # same definition, other tags: the revision in use is retagged, no new revision
    row = diff.task_definition_change(service, "workshop", wanted, latest, tags={"team": "new"})
    assert (row.name, row.action, row.fields) == (
        "workshop_web:3",
        "update",
        {"tags.team": ["old", "new"]},
    )
    assert row.note == diff.RETAG_NOTE
    # another definition: a new revision (registered with the spec's tags), not a retag
    other = {**latest, "cpu": "1024"}
    row = diff.task_definition_change(service, "workshop", wanted, other, tags={"team": "new"})
    assert (row.name, row.action, list(row.fields)) == ("workshop_web", "update", ["cpu"])
