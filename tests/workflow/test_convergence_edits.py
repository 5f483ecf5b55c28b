"""Every spec edit converges (issue 16): one test per scenario, on the real ASL in the emulator.

Each test edits a built environment's spec as a user would over weeks, asserts that the plan
shows exactly the difference (rows of steps/diff.py), that the build applies it, and that the
account (DescribeServices, ListInstances, DNS) then equals what the spec says.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.conftest import REPO, fill
from tests.workflow.helpers import registry_id, run_build, states_entered
from tests.workflow.test_convergence_paths import (
    built,
    changed,
    ecs_service,
    environment_calls,
    mutating,
    planned,
)


def rows(output: dict[str, Any], *, include_unchanged: bool = False) -> list[tuple[Any, ...]]:
    """(kind, name, action, fields) of the changes an output lists."""
    return [
        (r["kind"], r["name"], r["action"], r["fields"])
        for r in output["changes"]
        if include_unchanged or r["action"] not in ("unchanged", "adopt")
    ]


def network(service: dict[str, Any]) -> dict[str, Any]:
    return dict(service["networkConfiguration"]["awsvpcConfiguration"])


def test_a_security_group_edit_is_planned_and_applied_to_every_service(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    ec2 = emulator.client("ec2")
    vpc = workshop_spec["namespace"]["vpcId"]
    tighter = ec2.create_security_group(GroupName="tighter", Description="t", VpcId=vpc)["GroupId"]
    old = workshop_spec["network"]["securityGroups"]
    spec = copy.deepcopy(workshop_spec)
    spec["network"]["securityGroups"] = [tighter]

    plan, _ = planned(emulator, spec)

    assert rows(plan) == [
        ("ecsService", f"{name}-service", "update", {"network.securityGroups": [old, [tighter]]})
        for name in ("web", "api", "db")
    ]
    output = built(emulator, spec)

    for name in ("web", "api", "db"):
        assert network(ecs_service(emulator, f"{name}-service"))["securityGroups"] == [tighter]
    assert [r for r in rows(output) if r[0] == "ecsService"] == rows(plan)
    assert output["counts"]["update"] == 3
    # converged: the next plan and build change nothing
    again, _ = planned(emulator, spec)
    assert rows(again) == []
    emulator.aws_faults.calls.clear()
    built(emulator, spec)
    assert not environment_calls(mutating(emulator))


def test_assign_public_ip_and_subnets_edits_converge(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    spec = copy.deepcopy(workshop_spec)
    spec["network"]["subnets"] = workshop_spec["network"]["subnets"][:1]
    spec["network"]["assignPublicIp"] = "ENABLED"

    plan, _ = planned(emulator, spec)

    (kind, name, action, fields) = rows(plan)[0]
    assert (kind, name, action) == ("ecsService", "web-service", "update")
    assert fields == {
        "network.subnets": [workshop_spec["network"]["subnets"], spec["network"]["subnets"]],
        "network.assignPublicIp": ["DISABLED", "ENABLED"],
    }
    built(emulator, spec)
    assert network(ecs_service(emulator, "db-service")) == {
        "subnets": spec["network"]["subnets"],
        "securityGroups": workshop_spec["network"]["securityGroups"],
        "assignPublicIp": "ENABLED",
    }


def static_spec(workshop_spec: dict[str, Any], instances: list[dict[str, Any]]) -> dict[str, Any]:
    return changed(workshop_spec, "db", instances=instances)


def test_a_static_instance_removed_from_the_spec_is_deregistered_and_leaves_dns(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    two = [
        {"id": "legacy-db-1", "ipv4": "10.0.1.201"},
        {"id": "legacy-db-2", "ipv4": "10.0.1.202"},
    ]
    first = built(emulator, static_spec(workshop_spec, two))
    spec = static_spec(workshop_spec, two[:1])

    plan, _ = planned(emulator, spec)
    assert rows(plan) == [("instance", "db/legacy-db-2", "remove", {})]

    output = built(emulator, spec)

    sd = emulator.client("servicediscovery")
    registry = registry_id(first, {"name": "db"})
    ids = sorted(i["Id"] for i in sd.list_instances(ServiceId=registry)["Instances"])
    assert "legacy-db-2" not in ids
    assert "legacy-db-1" in ids
    (db,) = [s for s in output["services"] if s["name"] == "db"]
    assert "10.0.1.202" not in db["ips"]
    assert "10.0.1.201" in db["ips"]
    assert ("instance", "db/legacy-db-2", "remove", {}) in rows(output)
    again, _ = planned(emulator, spec)
    assert rows(again) == []


def test_a_static_instance_ip_change_is_an_update(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, static_spec(workshop_spec, [{"id": "legacy-db", "ipv4": "10.0.1.201"}]))
    spec = static_spec(workshop_spec, [{"id": "legacy-db", "ipv4": "10.0.1.209"}])

    plan, _ = planned(emulator, spec)
    assert rows(plan) == [
        (
            "instance",
            "db/legacy-db",
            "update",
            {"attributes.AWS_INSTANCE_IPV4": ["10.0.1.201", "10.0.1.209"]},
        )
    ]
    output = built(emulator, spec)
    (db,) = [s for s in output["services"] if s["name"] == "db"]
    assert "10.0.1.209" in db["ips"]
    assert "10.0.1.201" not in db["ips"]


def test_an_instance_someone_else_registered_is_named_never_deregistered(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """An instance envbuild did not register (not a task of db-service in this cluster, not a
    static instance of the spec or the record) is a conflict found at Preflight, before any
    change: the build names it and leaves it alone, instead of polling for ten minutes."""
    first = built(emulator, workshop_spec)
    sd = emulator.client("servicediscovery")
    registry = registry_id(first, {"name": "db"})
    sd.register_instance(
        ServiceId=registry, InstanceId="by-hand", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.250"}
    )
    emulator.clock.advance(5)
    emulator.aws_faults.calls.clear()

    described, history = run_build(emulator, workshop_spec)

    assert (described["status"], described["error"]) == ("FAILED", "PreflightFailed")
    cause = json.loads(described["cause"])["errorMessage"]
    assert "by-hand (10.0.1.250)" in cause
    assert "Create Services" not in states_entered(history)
    assert not environment_calls(mutating(emulator))
    ids = [i["Id"] for i in sd.list_instances(ServiceId=registry)["Instances"]]
    assert "by-hand" in ids


def test_a_failed_first_deployment_recovers_on_a_rerun_of_the_same_spec_once_fixed(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """onFailure keep; the image is pushed meanwhile (the fault cleared); the same spec converges:
    the FAILED deployment gets a new one (forceNewDeployment)."""
    spec = {**workshop_spec, "onFailure": "keep"}
    emulator.world.faults.tasks_fail_to_start(
        "workshop_web:1", reason="CannotPullContainerError: not pushed yet"
    )
    described, _ = run_build(emulator, spec)
    assert (described["status"], described["error"]) == ("FAILED", "DeploymentFailed")
    emulator.world.faults.clear_tasks_fail_to_start("workshop_web:1")

    plan, _ = planned(emulator, spec)
    assert rows(plan) == [
        ("ecsService", "web-service", "update", {"deployment": ["FAILED", "new deployment"]})
    ]
    output = built(emulator, spec)

    web = ecs_service(emulator, "web-service")
    assert [(d["status"], d["rolloutState"]) for d in web["deployments"]] == [
        ("PRIMARY", "COMPLETED")
    ]
    assert web["runningCount"] == 2
    (row,) = [r for r in rows(output) if r[0] == "ecsService"]
    assert row == (
        "ecsService",
        "web-service",
        "update",
        {"deployment": ["FAILED", "new deployment"]},
    )


def test_redeploy_starts_a_new_deployment_of_an_unchanged_spec(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    before = ecs_service(emulator, "api-service")["deployments"][0]["id"]
    emulator.aws_faults.calls.clear()

    output = built(emulator, {**workshop_spec, "redeploy": True})

    assert environment_calls(mutating(emulator))[("ecs", "UpdateService")] == 3
    after = ecs_service(emulator, "api-service")["deployments"]
    assert [d["id"] for d in after] != [before]
    assert [(d["status"], d["rolloutState"]) for d in after] == [("PRIMARY", "COMPLETED")]
    assert output["counts"]["update"] == 3
    # without redeploy, nothing to do again
    emulator.aws_faults.calls.clear()
    built(emulator, workshop_spec)
    assert not environment_calls(mutating(emulator))


def test_a_cluster_change_is_a_replace_row_and_the_build_refuses_it_before_any_change(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    emulator.client("ecs").create_cluster(clusterName="other-cluster")
    spec = {**workshop_spec, "cluster": "other-cluster"}

    plan, _ = planned(emulator, spec)
    replace = [r for r in rows(plan) if r[2] == "replace"]
    assert replace == [
        (
            "ecsService",
            workshop_spec["cluster"],
            "replace",
            {"cluster": [workshop_spec["cluster"], "other-cluster"]},
        )
    ]
    assert "EnvironmentMoved" in plan["message"]
    emulator.aws_faults.calls.clear()

    described, history = run_build(emulator, spec)

    assert (described["status"], described["error"]) == ("FAILED", "EnvironmentMoved")
    assert "cluster" in json.loads(described["cause"])["errorMessage"]
    assert not environment_calls(mutating(emulator))
    assert "Create Services" not in states_entered(history)


def test_a_namespace_name_change_is_a_replace_row_and_refused(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    spec = copy.deepcopy(workshop_spec)
    spec["namespace"]["name"] = "renamed.local"

    plan, _ = planned(emulator, spec)
    assert [r for r in rows(plan) if r[2] == "replace"] == [
        (
            "namespace",
            workshop_spec["namespace"]["name"],
            "replace",
            {"namespace.name": [workshop_spec["namespace"]["name"], "renamed.local"]},
        )
    ]
    emulator.aws_faults.calls.clear()
    described, _ = run_build(emulator, spec)
    assert (described["status"], described["error"]) == ("FAILED", "EnvironmentMoved")
    assert not environment_calls(mutating(emulator))


def test_a_failed_rerun_is_rolled_back_to_what_every_service_ran_before(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """api's update succeeds, web's fails: the rollback puts api back on workshop_api:1 with its
    old count, api's registry back on its TTL, db's static instances back as they were,
    deregisters both new revisions and never one a service runs."""
    spec_a = static_spec(workshop_spec, [{"id": "legacy-db", "ipv4": "10.0.1.201"}])
    first = built(emulator, spec_a)
    sd = emulator.client("servicediscovery")

    def state() -> dict[str, Any]:
        services = {name: ecs_service(emulator, f"{name}-service") for name in ("web", "api", "db")}
        registries = {
            name: sd.get_service(Id=registry_id(first, {"name": name}))["Service"]
            for name in ("web", "api", "db")
        }
        db_instances = sd.list_instances(ServiceId=registry_id(first, {"name": "db"}))
        return {
            "services": {
                name: (s["taskDefinition"].rsplit("/", 1)[-1], s["desiredCount"], network(s))
                for name, s in services.items()
            },
            "ttl": {n: r["DnsConfig"]["DnsRecords"] for n, r in registries.items()},
            "static": sorted(
                (i["Id"], i["Attributes"]["AWS_INSTANCE_IPV4"])
                for i in db_instances["Instances"]
                if "ECS_SERVICE_NAME" not in i["Attributes"]
            ),
        }

    before = state()
    ecs = emulator.client("ecs")
    active = sorted(ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"])
    emulator.world.faults.tasks_fail_to_start("workshop_web:2", reason="CannotPullContainerError")
    spec = changed(
        changed(
            static_spec(
                workshop_spec,
                [
                    {"id": "legacy-db", "ipv4": "10.0.1.209"},
                    {"id": "legacy-db-2", "ipv4": "10.0.1.210"},
                ],
            ),
            "web",
            image="nginx:no-such-tag",
        ),
        "api",
        image="nginx:1.27",
        desiredCount=3,
        dnsTtl=15,
    )

    described, history = run_build(emulator, spec)

    assert (described["status"], described["error"]) == ("FAILED", "DeploymentFailed")
    assert "Restore What Was Updated" in states_entered(history)
    for _ in range(60):  # the restored deployment rolls out like any other
        if state() == before:
            break
        emulator.clock.advance(10)
    assert state() == before
    assert sorted(ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]) == active
    inactive = ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"]
    assert sorted(arn.rsplit("/", 1)[-1] for arn in inactive) == [
        "workshop_api:2",
        "workshop_web:2",
    ]
    # and the next build of the first spec changes nothing
    emulator.aws_faults.calls.clear()
    built(emulator, spec_a)
    assert not environment_calls(mutating(emulator))


def test_a_record_type_change_is_refused_before_any_change(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Cloud Map cannot change a registry's record types (only their TTL): adding SRV to a
    built service is a conflict of the plan and a Preflight problem naming the field's fix."""
    built(emulator, workshop_spec)
    spec = changed(workshop_spec, "db", dnsRecords=["A", "SRV"])

    plan, _ = planned(emulator, spec)
    (row,) = [r for r in plan["changes"] if r["action"] == "conflict"]
    assert row["kind"] == "registry"
    assert "Cloud Map cannot change a registry's record types" in row["note"]
    emulator.aws_faults.calls.clear()

    described, history = run_build(emulator, spec)

    assert (described["status"], described["error"]) == ("FAILED", "PreflightFailed")
    assert "has DNS records A and the spec's dnsRecords are A+SRV" in described["cause"]
    assert not environment_calls(mutating(emulator))
    assert "Create Services" not in states_entered(history)


def test_a_teardown_keeps_a_registry_holding_someone_elses_instance(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """The instance is not envbuild's to deregister: its registry (and so the namespace) stays,
    reported as kept with the instance named; everything else of the environment goes."""
    first = built(emulator, workshop_spec)
    sd = emulator.client("servicediscovery")
    registry = registry_id(first, {"name": "db"})
    sd.register_instance(
        ServiceId=registry, InstanceId="by-hand", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.250"}
    )
    emulator.clock.advance(5)  # Cloud Map's registration operation completes

    arn = emulator.start_teardown(workshop_spec)
    described = emulator.wait(arn)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    kept = [k for k in output["kept"] if k["type"] == "registry"]
    assert [(k["name"], "by-hand (10.0.1.250)" in k["reason"]) for k in kept] == [("db", True)]
    assert [i["Id"] for i in sd.list_instances(ServiceId=registry)["Instances"]] == ["by-hand"]
    assert sorted(s["Name"] for s in sd.list_services()["Services"]) == ["db"]


def test_a_static_instance_id_of_another_teams_instance_is_a_conflict(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    first = built(emulator, workshop_spec)
    sd = emulator.client("servicediscovery")
    registry = registry_id(first, {"name": "db"})
    theirs = {"AWS_INSTANCE_IPV4": "10.0.1.250", "owner": "teamB"}
    sd.register_instance(ServiceId=registry, InstanceId="x1", Attributes=theirs)
    emulator.clock.advance(5)  # Cloud Map's registration operation completes
    emulator.aws_faults.calls.clear()

    described, _ = run_build(
        emulator, static_spec(workshop_spec, [{"id": "x1", "ipv4": "10.0.1.251"}])
    )

    assert (described["status"], described["error"]) == ("FAILED", "PreflightFailed")
    assert "x1 (10.0.1.250)" in described["cause"]
    assert not environment_calls(mutating(emulator))
    (instance,) = sd.list_instances(ServiceId=registry)["Instances"][-1:]
    assert (instance["Id"], instance["Attributes"]) == ("x1", theirs)


def test_with_autoscaling_a_rerun_leaves_the_count_to_the_scaler(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = changed(
        workshop_spec,
        "db",
        desiredCount=2,
        autoscaling={"minCount": 2, "maxCount": 4, "targetCpuPercent": 60},
    )
    built(emulator, spec)
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    emulator.client("ecs").update_service(cluster=cluster, service="db-service", desiredCount=4)
    emulator.aws_faults.calls.clear()

    output = built(emulator, spec)  # ready with the scaler's 4 tasks

    assert ecs_service(emulator, "db-service")["desiredCount"] == 4
    assert not environment_calls(mutating(emulator))
    (db,) = [s for s in output["services"] if s["name"] == "db"]
    assert len(db["ips"]) == 4


def test_a_log_retention_edit_is_planned_and_applied(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    spec = {**workshop_spec, "logRetentionDays": 14}

    plan, _ = planned(emulator, spec)

    assert [r for r in rows(plan) if r[0] == "logGroup"] == [
        ("logGroup", f"/ecs/workshop_{name}", "update", {"logRetentionDays": [30, 14]})
        for name in ("web", "api", "db")
    ]
    built(emulator, spec)
    logs = emulator.client("logs")
    groups = logs.describe_log_groups(logGroupNamePrefix="/ecs/workshop_")["logGroups"]
    assert {g["logGroupName"]: g.get("retentionInDays") for g in groups} == {
        f"/ecs/workshop_{name}": 14 for name in ("web", "api", "db")
    }
    again, _ = planned(emulator, spec)
    assert rows(again) == []
    # null: never expire (DeleteRetentionPolicy)
    forever = {**workshop_spec, "logRetentionDays": None}
    plan, _ = planned(emulator, forever)
    assert {r[3]["logRetentionDays"][1] for r in rows(plan) if r[0] == "logGroup"} == {None}
    built(emulator, forever)
    groups = logs.describe_log_groups(logGroupNamePrefix="/ecs/workshop_")["logGroups"]
    assert [g.get("retentionInDays") for g in groups] == [None, None, None]


def test_capacity_providers_added_then_removed_converge(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    spot = changed(
        workshop_spec,
        "db",
        capacityProviders=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    )
    built(emulator, spot)
    assert (
        ecs_service(emulator, "db-service")["capacityProviderStrategy"][0]["capacityProvider"]
        == "FARGATE_SPOT"
    )

    plan, _ = planned(emulator, workshop_spec)
    assert [(r[0], r[1], r[2]) for r in rows(plan)] == [("ecsService", "db-service", "update")]
    built(emulator, workshop_spec)

    assert not ecs_service(emulator, "db-service").get("capacityProviderStrategy")
    again, _ = planned(emulator, workshop_spec)
    assert rows(again) == []
    emulator.aws_faults.calls.clear()
    built(emulator, workshop_spec)
    assert not environment_calls(mutating(emulator))


def test_tag_edits_converge_on_services_registries_and_log_groups(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Added, changed, removed: the plan shows each, the build applies it, envbuild's own
    envbuild:* tags are never touched, and the next build makes no call."""
    first = built(emulator, workshop_spec)
    ecs, sd, logs = (emulator.client(n) for n in ("ecs", "servicediscovery", "logs"))
    registry = registry_id(first, {"name": "db"})

    def tags_now() -> dict[str, dict[str, str]]:
        service = ecs_service(emulator, "db-service")
        ecs_tags = {
            t["key"]: t["value"]
            for t in ecs.list_tags_for_resource(resourceArn=service["serviceArn"])["tags"]
        }
        arn = sd.get_service(Id=registry)["Service"]["Arn"]
        sd_tags = {t["Key"]: t["Value"] for t in sd.list_tags_for_resource(ResourceARN=arn)["Tags"]}
        (group,) = logs.describe_log_groups(logGroupNamePrefix="/ecs/workshop_db")["logGroups"]
        log_tags = logs.list_tags_for_resource(resourceArn=group["arn"].removesuffix(":*"))["tags"]
        return {"ecs": ecs_tags, "registry": sd_tags, "logGroup": dict(log_tags)}

    for tags in ({"team": "data", "cost": "a"}, {"team": "data", "cost": "b"}, {}):
        spec = changed(workshop_spec, "db", tags=tags)
        plan, _ = planned(emulator, spec)
        planned_kinds = sorted(
            {r[0] for r in rows(plan) if r[1].startswith(("db", "/ecs/workshop_db"))}
        )
        built(emulator, spec)
        now = tags_now()
        for kind, have in now.items():
            assert {k: v for k, v in have.items() if not k.startswith("envbuild:")} == tags, kind
            assert have["envbuild:managed"] == "true", kind
        assert planned_kinds == ["ecsService", "logGroup", "registry"]
        emulator.aws_faults.calls.clear()
        built(emulator, spec)
        assert not environment_calls(mutating(emulator))


# ---------------------------------------------------------------------------------------------
# Issue 17's remaining gaps: autoscaling in the plan, overrides removed, the rollback of log
# retention and scalable targets, tags of revisions and the namespace.


def placeholders() -> dict[str, Any]:
    """events/workshop.json as it is (${VARS} unfilled)."""
    return dict(json.loads((REPO / "events" / "workshop.json").read_text()))


def record_calls(request: pytest.FixtureRequest, emulator: Any) -> None:
    """The calls of an emulator this test starts itself count for the IAM proof, as the
    ``emulator`` fixture's do (its stash key is the one of the conftest pytest loaded)."""
    for plugin in request.config.pluginmanager.get_plugins():
        key = getattr(plugin, "RECORDING", None)
        if key is not None and str(getattr(plugin, "__file__", "")).endswith("conftest.py"):
            recording = request.config.stash.get(key, None)
            if recording is not None:
                recording.calls.merge(emulator.aws_faults.function_calls)
                return


def fresh_builds(request: pytest.FixtureRequest, specs: list[Any], describe: Any) -> list[Any]:
    """``describe`` of a fresh build of each spec (in placeholders, or a function of the
    emulator that returns it), each in an emulated account of its own (one emulator runs at a
    time: call this before using another)."""
    from envbuild_emulator.emulator import Emulator

    found = []
    for spec in specs:
        with Emulator(time_scale=0.0) as other:
            built(
                other,
                spec(other)
                if callable(spec)
                else json.loads(fill(json.dumps(spec), other.prerequisites)),
            )
            found.append(describe(other))
            record_calls(request, other)
    return found


def scaling_now(emulator: Any) -> dict[str, Any]:
    """The scalable targets and policies as Application Auto Scaling describes them (no ARNs)."""
    scaling = emulator.client("application-autoscaling")
    targets = scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    policies = scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    return {
        "targets": sorted(
            (t["ResourceId"].rsplit("/", 1)[-1], t["MinCapacity"], t["MaxCapacity"])
            for t in targets
        ),
        "policies": sorted(
            (
                p["PolicyName"],
                p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"],
                p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
                    "PredefinedMetricType"
                ],
            )
            for p in policies
        ),
    }


def test_autoscaling_added_changed_and_removed_is_planned_and_applied_exactly(
    request: pytest.FixtureRequest,
) -> None:
    from envbuild_emulator.emulator import Emulator

    steps = [
        (
            {"minCount": 2, "maxCount": 4, "targetCpuPercent": 60},
            ("autoscaling", "db-service", "create"),
            {"minCount": [None, 2], "maxCount": [None, 4], "targetCpuPercent": [None, 60]},
        ),
        (
            {"minCount": 2, "maxCount": 6, "targetCpuPercent": 50, "targetMemoryPercent": 70},
            ("autoscaling", "db-service", "update"),
            {"maxCount": [4, 6], "targetCpuPercent": [60, 50], "targetMemoryPercent": [None, 70]},
        ),
        (
            {"minCount": 2, "maxCount": 6, "targetCpuPercent": 50},
            ("autoscaling", "db-service", "update"),
            {"targetMemoryPercent": [70, None]},
        ),
        (None, ("autoscaling", "db-service", "remove"), {}),
    ]
    start = changed(placeholders(), "db", desiredCount=2)
    specs = [
        changed(start, "db", autoscaling=autoscaling) if autoscaling is not None else start
        for autoscaling, _row, _fields in steps
    ]
    wanted = fresh_builds(request, specs, scaling_now)
    with Emulator(time_scale=0.0) as emulator:
        run_steps(emulator, steps, specs, wanted)
        record_calls(request, emulator)


def run_steps(emulator: Any, steps: list[Any], specs: list[Any], wanted: list[Any]) -> None:
    def fill_in(spec: dict[str, Any]) -> dict[str, Any]:
        return dict(json.loads(fill(json.dumps(spec), emulator.prerequisites)))

    built(emulator, fill_in(changed(placeholders(), "db", desiredCount=2)))
    for (autoscaling, row, fields), raw, fresh in zip(steps, specs, wanted, strict=True):
        spec = fill_in(raw)
        plan, _ = planned(emulator, spec)
        assert rows(plan) == [(*row, fields)], autoscaling
        emulator.aws_faults.calls.clear()
        output = built(emulator, spec)
        assert rows(output) == [(*row, fields)], autoscaling
        assert scaling_now(emulator) == fresh, autoscaling
        # exactly the row's fields were sent
        calls = environment_calls(mutating(emulator))
        sent = {k[1]: n for k, n in calls.items() if k[0] == "application-autoscaling"}
        expected = {
            "create": {"RegisterScalableTarget": 1, "PutScalingPolicy": 1},
            "remove": {"DeregisterScalableTarget": 1},
        }.get(row[2]) or {
            "RegisterScalableTarget": 1 if "maxCount" in fields else 0,
            "PutScalingPolicy": sum(
                1 for k, v in fields.items() if k.startswith("target") and v[1] is not None
            ),
            "DeleteScalingPolicy": sum(1 for v in fields.values() if v[1] is None),
        }
        expected = {k: n for k, n in expected.items() if n}
        assert sent == expected, autoscaling
        # converged: the next plan and build change nothing
        again, _ = planned(emulator, spec)
        assert rows(again) == []
        emulator.aws_faults.calls.clear()
        built(emulator, spec)
        assert not environment_calls(mutating(emulator))


def web_now(emulator: Any) -> dict[str, Any]:
    """shop_web's latest revision and web-service as ECS describes them (no ARNs, ids)."""
    ecs = emulator.client("ecs")
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    definition = dict(ecs.describe_task_definition(taskDefinition="shop_web")["taskDefinition"])
    for key in ("taskDefinitionArn", "revision", "registeredAt", "registeredBy", "executionRoleArn", "taskRoleArn"):  # fmt: skip
        definition.pop(key, None)
    for container in definition["containerDefinitions"]:
        container.pop("secrets", None)
    (service,) = ecs.describe_services(cluster=cluster, services=["web-service"])["services"]
    return {
        "taskDefinition": definition,
        "healthCheckGracePeriodSeconds": service.get("healthCheckGracePeriodSeconds") or 0,
        "onRevision": service["taskDefinition"].rsplit(":", 1)[-1] != "1",
    }


def test_removed_overrides_converge_to_a_revision_without_them_and_the_service_default(
    request: pytest.FixtureRequest,
) -> None:
    """web's overrides (taskDefinition.ephemeralStorage, container.stopTimeout and
    readonlyRootFilesystem, service.healthCheckGracePeriodSeconds) removed from the spec: the
    plan shows each as [value, None] (the service field as [30, 0], its ECS default), the build
    registers a revision without them and resets the service's field, the result equals a
    fresh build without overrides, and the next build makes no mutating call."""
    from envbuild_emulator.emulator import Emulator
    from tests.workflow.test_spec_fields_paths import production_like

    def without_overrides(spec: dict[str, Any]) -> dict[str, Any]:
        spec = copy.deepcopy(spec)
        del spec["services"][0]["overrides"]
        return spec

    (fresh,) = fresh_builds(request, [lambda e: without_overrides(production_like(e))], web_now)
    with Emulator(time_scale=0.0) as emulator:
        first = production_like(emulator)
        built(emulator, first)
        spec = without_overrides(first)
        plan, _ = planned(emulator, spec)
        changed_rows = {(r[0], r[1]): r[3] for r in rows(plan)}
        assert changed_rows == {
            ("taskDefinition", "shop_web"): {
                "ephemeralStorage": [{"sizeInGiB": 30}, None],
                "stopTimeout": [30, None],
                "readonlyRootFilesystem": [False, None],
            },
            ("ecsService", "web-service"): {
                "taskDefinition": ["shop_web:1", "shop_web:(new revision)"],
                "healthCheckGracePeriodSeconds": [30, 0],
            },
        }
        output = built(emulator, spec)
        assert {(r[0], r[1].split(":")[0]): r[3] for r in rows(output)} == {
            ("taskDefinition", "shop_web"): changed_rows[("taskDefinition", "shop_web")],
            ("ecsService", "web-service"): {
                "taskDefinition": ["shop_web:1", "shop_web:2"],
                "healthCheckGracePeriodSeconds": [30, 0],
            },
        }
        now = web_now(emulator)
        assert now["taskDefinition"] == fresh["taskDefinition"]
        assert now["healthCheckGracePeriodSeconds"] == fresh["healthCheckGracePeriodSeconds"] == 0
        again, _ = planned(emulator, spec)
        assert rows(again) == []
        emulator.aws_faults.calls.clear()
        built(emulator, spec)
        assert not environment_calls(mutating(emulator))
        record_calls(request, emulator)


def test_a_removed_service_override_ecs_cannot_unset_is_named_in_the_plan_note(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(
        emulator,
        changed(
            workshop_spec, "db", overrides={"service": {"availabilityZoneRebalancing": "DISABLED"}}
        ),
    )
    plan, _ = planned(emulator, workshop_spec)
    (row,) = [r for r in plan["changes"] if r["name"] == "db-service"]
    assert row["action"] == "unchanged"
    assert (
        "overrides.service.availabilityZoneRebalancing removed from the spec: ECS cannot unset"
        ' it, it stays "DISABLED"'
    ) in row["note"]
    emulator.aws_faults.calls.clear()
    built(emulator, workshop_spec)
    assert not environment_calls(mutating(emulator))


def test_a_failed_rerun_restores_log_retention_and_scalable_targets_it_changed(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """The re-run shortens the retention, edits db's target and policies and gives api a
    target, then fails (web's new revision cannot start): the rollback puts the retention,
    db's target and policies back and deregisters api's; the first spec then builds with no
    mutating call."""
    spec_a = changed(
        workshop_spec, "db", autoscaling={"minCount": 1, "maxCount": 2, "targetCpuPercent": 60}
    )
    built(emulator, spec_a)
    logs = emulator.client("logs")

    def state() -> dict[str, Any]:
        groups = logs.describe_log_groups(logGroupNamePrefix="/ecs/workshop_")["logGroups"]
        return {
            "retention": {g["logGroupName"]: g.get("retentionInDays") for g in groups},
            **scaling_now(emulator),
        }

    before = state()
    assert set(before["retention"].values()) == {30}
    emulator.world.faults.tasks_fail_to_start("workshop_web:2", reason="CannotPullContainerError")
    spec = changed(
        changed(
            changed(
                {**spec_a, "logRetentionDays": 14},
                "db",
                autoscaling={
                    "minCount": 1,
                    "maxCount": 3,
                    "targetCpuPercent": 50,
                    "targetMemoryPercent": 70,
                },
            ),
            "api",
            autoscaling={"minCount": 2, "maxCount": 3, "targetCpuPercent": 60},
        ),
        "web",
        image="nginx:no-such-tag",
    )
    plan, _ = planned(emulator, spec)
    assert {(r[0], r[1]) for r in rows(plan)} >= {
        ("logGroup", "/ecs/workshop_web"),
        ("autoscaling", "db-service"),
        ("autoscaling", "api-service"),
    }

    described, history = run_build(emulator, spec)

    assert (described["status"], described["error"]) == ("FAILED", "DeploymentFailed")
    assert "Restore What Was Updated" in states_entered(history)
    (exited,) = [
        e
        for e in history
        if e["type"].endswith("StateExited")
        and e["stateExitedEventDetails"]["name"] == "Restore What Was Updated"
    ]
    restored = json.loads(exited["stateExitedEventDetails"]["output"])["restored"]["restored"]
    assert {r for r in restored if r.startswith(("logGroup", "autoscaling"))} == {
        *(f"logGroup /ecs/workshop_{name}" for name in ("web", "api", "db")),
        "autoscaling api-service",
        "autoscaling db-service",
    }
    assert state() == before
    emulator.world.faults.clear_tasks_fail_to_start("workshop_web:2")
    for _ in range(60):  # web's restored deployment rolls out like any other
        if ecs_service(emulator, "web-service")["deployments"][0]["rolloutState"] == "COMPLETED":
            break
        emulator.clock.advance(10)
    emulator.aws_faults.calls.clear()
    built(emulator, spec_a)
    assert not environment_calls(mutating(emulator))


def spec_tags_now(emulator: Any) -> dict[str, Any]:
    """The spec's tags (envbuild:* aside) on the namespace and on each family's latest
    revision, and the revisions registered."""
    ecs, sd = emulator.client("ecs"), emulator.client("servicediscovery")
    (namespace,) = sd.list_namespaces()["Namespaces"]
    namespace_tags = {
        t["Key"]: t["Value"]
        for t in sd.list_tags_for_resource(ResourceARN=namespace["Arn"])["Tags"]
        if not t["Key"].startswith("envbuild:")
    }
    revisions = {}
    for family in ("workshop_web", "workshop_api", "workshop_db"):
        described = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
        revisions[f"{family}:{described['taskDefinition']['revision']}"] = {
            t["key"]: t["value"] for t in described["tags"] if not t["key"].startswith("envbuild:")
        }
    return {"namespace": namespace_tags, "revisions": revisions}


def test_tag_edits_retag_the_namespace_and_the_revisions_in_use_without_a_new_revision(
    request: pytest.FixtureRequest,
) -> None:
    from envbuild_emulator.emulator import Emulator

    steps = [{"team": "data", "cost": "a"}, {"team": "data", "cost": "b"}, {}]
    specs = [{**placeholders(), "tags": tags} for tags in steps]
    wanted = fresh_builds(request, specs, spec_tags_now)
    with Emulator(time_scale=0.0) as emulator:

        def fill_in(spec: dict[str, Any]) -> dict[str, Any]:
            return dict(json.loads(fill(json.dumps(spec), emulator.prerequisites)))

        built(emulator, fill_in(placeholders()))
        for tags, raw, fresh in zip(steps, specs, wanted, strict=True):
            spec = fill_in(raw)
            before = spec_tags_now(emulator)
            plan, _ = planned(emulator, spec)
            planned_rows = {
                (r[0], r[1]): r[3] for r in rows(plan) if r[0] in ("namespace", "taskDefinition")
            }
            fields = {
                f"tags.{k}": [before["namespace"].get(k), tags.get(k)]
                for k in sorted(set(before["namespace"]) | set(tags))
                if before["namespace"].get(k) != tags.get(k)
            }
            assert planned_rows == {
                ("namespace", "workshop.local"): fields,
                **{("taskDefinition", f"workshop_{n}:1"): fields for n in ("web", "api", "db")},
            }, tags
            (row,) = [r for r in plan["changes"] if r["name"] == "workshop_web:1"]
            assert "no new revision" in row["note"]
            output = built(emulator, spec)
            assert {
                (r[0], r[1]): r[3] for r in rows(output) if r[0] in ("namespace", "taskDefinition")
            } == planned_rows
            now = spec_tags_now(emulator)
            assert now == {"namespace": tags, "revisions": dict.fromkeys(before["revisions"], tags)}
            # as a fresh build tags them (its revisions are :1 too)
            assert now == fresh, tags
            again, _ = planned(emulator, spec)
            assert rows(again) == []
            emulator.aws_faults.calls.clear()
            built(emulator, spec)
            assert not environment_calls(mutating(emulator))
        record_calls(request, emulator)
