# ruff: noqa: S603, PT018, RUF015, C416
"""Adversarial black-box attacks on the claims of README.md and docs/*.md (issues 17 and 18, 2026-12-06).

One test per attack; each asserts what the docs promise."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.workflow.helpers import account_snapshot, live_ecs_services, run_build
from tests.workflow.test_convergence_edits import rows
from tests.workflow.test_convergence_paths import (
    built,
    ecs_service,
    environment_calls,
    mutating,
    planned,
)

REPO = Path(__file__).resolve().parents[2]


def td(emulator: Any, family: str) -> dict[str, Any]:
    return dict(
        emulator.client("ecs").describe_task_definition(taskDefinition=family)["taskDefinition"]
    )


def env_of(emulator: Any, family: str) -> dict[str, str]:
    main = td(emulator, family)["containerDefinitions"][0]
    return {e["name"]: e["value"] for e in main.get("environment", [])}


def retention(emulator: Any, group: str) -> Any:
    groups = emulator.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    return [g for g in groups if g["logGroupName"] == group][0].get("retentionInDays")


def scalable_targets(emulator: Any) -> dict[str, dict[str, Any]]:
    aas = emulator.client("application-autoscaling")
    targets = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    return {t["ResourceId"].rsplit("/", 1)[-1]: t for t in targets}


def no_changes_rerun(emulator: Any, spec: dict[str, Any]) -> None:
    again, _ = planned(emulator, spec)
    assert rows(again) == [], rows(again)
    emulator.aws_faults.calls.clear()
    built(emulator, spec)
    assert not environment_calls(mutating(emulator))


# ---------------------------------------------------------------- serviceDefaults


def test_a_service_own_empty_environment_replaces_the_default(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """'a service's own value replaces the default's whole': db keeps its own `"environment": {}`."""
    spec = copy.deepcopy(workshop_spec)
    spec["serviceDefaults"] = {"environment": {"LOG_LEVEL": "info"}}
    spec["services"][0].pop("environment")  # web takes the default
    built(emulator, spec)
    assert env_of(emulator, "workshop_web") == {"LOG_LEVEL": "info"}
    assert env_of(emulator, "workshop_api") == {"DB_ENDPOINT": "db.workshop.local"}
    assert env_of(emulator, "workshop_db") == {}


def test_a_service_own_null_log_retention_means_never_expire_despite_the_default(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """services[].logRetentionDays null: never expire; serviceDefaults only fills fields a
    service does not set."""
    spec = copy.deepcopy(workshop_spec)
    spec["serviceDefaults"] = {"logRetentionDays": 14}
    spec["services"][2]["logRetentionDays"] = None
    built(emulator, spec)
    assert retention(emulator, "/ecs/workshop_web") == 14
    assert retention(emulator, "/ecs/workshop_db") is None


def test_a_service_own_null_autoscaling_opts_out_of_the_default(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = copy.deepcopy(workshop_spec)
    spec["serviceDefaults"] = {
        "autoscaling": {"minCount": 1, "maxCount": 4, "targetCpuPercent": 60}
    }
    spec["services"][2]["autoscaling"] = None
    built(emulator, spec)
    targets = scalable_targets(emulator)
    assert set(targets) == {"web-service", "api-service"}


def test_removing_the_defaults_block_plans_and_applies_exactly_the_reverted_fields(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = copy.deepcopy(workshop_spec)
    for s in spec["services"]:
        s.pop("cpu"), s.pop("memory")
    spec["services"][0].pop("environment")
    spec["serviceDefaults"] = {
        "cpu": "512",
        "memory": "1024",
        "environment": {"LOG_LEVEL": "info"},
        "logRetentionDays": 14,
    }
    built(emulator, spec)
    no_changes_rerun(emulator, spec)

    bare = copy.deepcopy(spec)
    del bare["serviceDefaults"]
    plan, _ = planned(emulator, bare)
    planned_rows = rows(plan)
    by = {(r[0], r[1]): r for r in planned_rows}
    # every task definition reverts to 256/512, web loses its environment; retention -> 30
    for name in ("web", "api", "db"):
        assert ("taskDefinition", f"workshop_{name}") in by, planned_rows
        assert ("logGroup", f"/ecs/workshop_{name}") in by, planned_rows
    web_fields = by[("taskDefinition", "workshop_web")][3]
    assert "environment.LOG_LEVEL" in json.dumps(web_fields) or "environment" in json.dumps(
        web_fields
    )
    assert "LOG_LEVEL" not in json.dumps(by[("taskDefinition", "workshop_api")][3])

    output = built(emulator, bare)
    assert sorted((r[0], r[1], r[2]) for r in rows(output)) == sorted(
        (r[0], r[1], r[2]) for r in planned_rows
    )
    for name in ("web", "api", "db"):
        d = td(emulator, f"workshop_{name}")
        assert (d["cpu"], d["memory"]) == ("256", "512")
        assert retention(emulator, f"/ecs/workshop_{name}") == 30
    assert env_of(emulator, "workshop_web") == {}
    no_changes_rerun(emulator, bare)


def test_a_service_switching_from_its_own_value_to_the_default(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = copy.deepcopy(workshop_spec)
    spec["serviceDefaults"] = {"environment": {"LOG_LEVEL": "info"}, "dnsTtl": 30}
    built(emulator, spec)
    edited = copy.deepcopy(spec)
    edited["services"][1].pop("environment")
    edited["services"][1].pop("dnsTtl")
    plan, _ = planned(emulator, edited)
    got = sorted((r[0], r[1]) for r in rows(plan))
    assert got == [
        ("ecsService", "api-service"),
        ("registry", "api"),
        ("taskDefinition", "workshop_api"),
    ], rows(plan)
    built(emulator, edited)
    assert env_of(emulator, "workshop_api") == {"LOG_LEVEL": "info"}
    assert td(emulator, "workshop_web")["revision"] == 1
    no_changes_rerun(emulator, edited)
    teardown = emulator.wait(
        emulator.start_teardown(
            {**edited, "deleteLogGroups": True, "deregisterTaskDefinitions": True}
        )
    )
    assert teardown["status"] == "SUCCEEDED", teardown.get("cause")
    assert not live_ecs_services(emulator.client("ecs"), edited["cluster"])


def test_removing_an_overrides_key_given_in_service_defaults_makes_a_revision_without_it(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = copy.deepcopy(workshop_spec)
    spec["serviceDefaults"] = {
        "overrides": {
            "container": {"stopTimeout": 30},
            "service": {"healthCheckGracePeriodSeconds": 30},
        }
    }
    built(emulator, spec)
    assert td(emulator, "workshop_web")["containerDefinitions"][0].get("stopTimeout") == 30
    edited = copy.deepcopy(spec)
    del edited["serviceDefaults"]
    plan, _ = planned(emulator, edited)
    kinds = sorted((r[0], r[1]) for r in rows(plan))
    for name in ("web", "api", "db"):
        assert ("taskDefinition", f"workshop_{name}") in kinds, rows(plan)
        assert ("ecsService", f"{name}-service") in kinds, rows(plan)
    built(emulator, edited)
    assert "stopTimeout" not in td(emulator, "workshop_web")["containerDefinitions"][0]
    assert ecs_service(emulator, "web-service").get("healthCheckGracePeriodSeconds", 0) == 0
    no_changes_rerun(emulator, edited)


def test_autoscaling_in_defaults_added_changed_removed(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = copy.deepcopy(workshop_spec)
    built(emulator, spec)
    added = {
        **spec,
        "serviceDefaults": {"autoscaling": {"minCount": 1, "maxCount": 4, "targetCpuPercent": 60}},
    }
    plan, _ = planned(emulator, added)
    assert (
        sorted(r[1] for r in rows(plan) if r[0] == "autoscaling")
        == sorted(["web-service", "api-service", "db-service"])
        or len([r for r in rows(plan) if r[0] == "autoscaling"]) == 3
    ), rows(plan)
    built(emulator, added)
    assert set(scalable_targets(emulator)) == {"web-service", "api-service", "db-service"}
    no_changes_rerun(emulator, added)

    changed = copy.deepcopy(added)
    changed["serviceDefaults"]["autoscaling"]["maxCount"] = 6
    plan, _ = planned(emulator, changed)
    assert len([r for r in rows(plan) if r[0] == "autoscaling"]) == 3, rows(plan)
    built(emulator, changed)
    assert {t["MaxCapacity"] for t in scalable_targets(emulator).values()} == {6}

    removed = copy.deepcopy(spec)
    plan, _ = planned(emulator, removed)
    assert [r[2] for r in rows(plan) if r[0] == "autoscaling"] == ["remove"] * 3, rows(plan)
    built(emulator, removed)
    assert scalable_targets(emulator) == {}
    no_changes_rerun(emulator, removed)


def test_tag_edit_in_defaults_retags_revision_in_use_without_a_new_revision(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = {
        **copy.deepcopy(workshop_spec),
        "tags": {"team": "a"},
        "serviceDefaults": {"tags": {"cost": "1"}},
    }
    built(emulator, spec)
    edited = copy.deepcopy(spec)
    edited["serviceDefaults"]["tags"] = {"cost": "2"}
    edited["tags"] = {"team": "b"}
    plan, _ = planned(emulator, edited)
    assert any(r[0] == "namespace" for r in rows(plan)), rows(plan)
    built(emulator, edited)
    d = emulator.client("ecs").describe_task_definition(
        taskDefinition="workshop_web", include=["TAGS"]
    )
    assert d["taskDefinition"]["revision"] == 1
    tags = {t["key"]: t["value"] for t in d["tags"]}
    assert tags["cost"] == "2" and tags["team"] == "b"
    no_changes_rerun(emulator, edited)


# ---------------------------------------------------------------- ownership / pipeline


def test_another_teams_ecs_service_of_the_same_name_is_a_conflict_and_untouched(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    ecs = emulator.client("ecs")
    p = emulator.prerequisites
    ecs.register_task_definition(
        family="other-team",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "x", "image": "busybox", "essential": True}],
    )
    ecs.create_service(
        cluster=p["CLUSTER_NAME"],
        serviceName="api-service",
        taskDefinition="other-team",
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [p["PRIVATE_SUBNET_1"]],
                "securityGroups": [p["ECS_SG"]],
            }
        },
        tags=[{"key": "team", "value": "other"}],
    )
    before = ecs_service(emulator, "api-service")
    plan, _ = planned(emulator, workshop_spec)
    assert [r for r in plan["changes"] if r["name"] == "api-service"][0]["action"] == "conflict"
    described, _ = run_build(emulator, workshop_spec)
    assert described["status"] == "FAILED"
    after = ecs_service(emulator, "api-service")
    assert after["taskDefinition"] == before["taskDefinition"]
    assert after["desiredCount"] == before["desiredCount"]
    assert after.get("serviceRegistries", []) == before.get("serviceRegistries", [])
    tags = ecs.list_tags_for_resource(resourceArn=after["serviceArn"])["tags"]
    assert {t["key"] for t in tags} == {"team"}


def test_a_denied_secret_in_service_defaults_fails_before_anything_is_created(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    sm = emulator.client("secretsmanager")
    arn = sm.create_secret(Name="shop/db", SecretString="x")["ARN"]
    iam = emulator.client("iam")
    for name in iam.list_role_policies(RoleName="ecsTaskExecutionRole")["PolicyNames"]:
        iam.delete_role_policy(RoleName="ecsTaskExecutionRole", PolicyName=name)
    before = account_snapshot(emulator)
    spec = {**copy.deepcopy(workshop_spec), "serviceDefaults": {"secrets": {"DB_PASSWORD": arn}}}
    described, _ = run_build(emulator, spec)
    assert described["status"] == "FAILED"
    assert described["error"] == "PreflightFailed", described
    assert arn in described["cause"]
    assert "DB_PASSWORD" in described["cause"]
    assert account_snapshot(emulator) == before


# ---------------------------------------------------------------- CLI


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = REPO / ".venv" / "bin" / "envbuild"
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def _multibyte_spec(tmp_path: Path) -> Path:
    """A spec under 256 Ki characters whose UTF-8 encoding is over 256 KiB."""
    spec = json.loads((REPO / "events" / "workshop.json").read_text())
    # 30 services, each with a description-like environment of 3-byte characters
    services = []
    for i in range(30):
        services.append(
            {
                "name": f"s{i:02d}",
                "image": "nginx:latest",
                "port": 80,
                "desiredCount": 1,
                "environment": {f"V{j}": "€" * 1000 for j in range(3)},
            }
        )
    spec["services"] = services
    path = tmp_path / "big.json"
    path.write_text(json.dumps(spec, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["run", "plan"])
def test_cli_refuses_a_spec_over_256_kib_in_utf8_bytes_naming_its_size(
    tmp_path: Path, command: str
) -> None:
    path = _multibyte_spec(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert len(text) < 256 * 1024 < len(text.encode("utf-8"))
    result = _cli(command, str(path), "--output", "json", cwd=REPO)
    assert result.returncode != 0
    combined = result.stdout + result.stderr
    assert "256" in combined and "KiB" in combined, combined[-2000:]
    assert "InvalidExecutionInput" not in combined, combined[-2000:]


# ---------------------------------------------------------------- round 2

from tests.workflow.test_pipeline_paths import around_loop_turns, small_budget  # noqa: E402,F401
from tests.workflow.test_scale_paths import many_services  # noqa: E402


def test_a_failed_rerun_restores_retention_and_scaling_targets_set_through_defaults(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = copy.deepcopy(workshop_spec)
    spec["serviceDefaults"] = {
        "logRetentionDays": 14,
        "autoscaling": {"minCount": 1, "maxCount": 4, "targetCpuPercent": 60},
    }
    spec["services"][2]["autoscaling"] = None  # db: no scaler
    built(emulator, spec)
    aas = emulator.client("application-autoscaling")
    policies_before = sorted(
        (
            p["PolicyName"],
            json.dumps(p["TargetTrackingScalingPolicyConfiguration"], sort_keys=True, default=str),
        )
        for p in aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    )
    targets_before = {
        k: (v["MinCapacity"], v["MaxCapacity"]) for k, v in scalable_targets(emulator).items()
    }
    revisions_before = sorted(
        emulator.client("ecs").list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
    )

    edited = copy.deepcopy(spec)
    edited["serviceDefaults"] = {
        "logRetentionDays": 90,
        "autoscaling": {
            "minCount": 1,
            "maxCount": 8,
            "targetCpuPercent": 50,
            "targetMemoryPercent": 70,
        },
        "environment": {"NEW": "1"},
    }
    edited["services"][2].pop("autoscaling")  # db now takes the default scaler
    emulator.dispatcher.fail_next("VerifyDnsFunction", "RuntimeError", times=1)
    described, _ = run_build(emulator, edited)
    assert described["status"] == "FAILED"
    assert "injected crash of VerifyDnsFunction" in described["cause"], described

    for name in ("web", "api", "db"):
        assert retention(emulator, f"/ecs/workshop_{name}") == 14, name
    targets_after = {
        k: (v["MinCapacity"], v["MaxCapacity"]) for k, v in scalable_targets(emulator).items()
    }
    assert targets_after == targets_before
    policies_after = sorted(
        (
            p["PolicyName"],
            json.dumps(p["TargetTrackingScalingPolicyConfiguration"], sort_keys=True, default=str),
        )
        for p in aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    )
    assert policies_after == policies_before
    assert (
        sorted(emulator.client("ecs").list_task_definitions(status="ACTIVE")["taskDefinitionArns"])
        == revisions_before
    )
    for name in ("web", "api", "db"):
        assert ecs_service(emulator, f"{name}-service")["taskDefinition"].endswith(
            f"workshop_{name}:1"
        )
    no_changes_rerun(emulator, spec)


def test_stop_mid_loop_then_teardown_leaves_nothing_of_envbuild_and_spares_the_other_team(
    emulator: Any,
    small_budget: None,  # noqa: F811
) -> None:
    import threading

    p = emulator.prerequisites
    ecs, logs = emulator.client("ecs"), emulator.client("logs")
    # another team, with names that look like the environment's
    ecs.register_task_definition(
        family="scale12_svc999",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "x", "image": "busybox", "essential": True}],
    )
    ecs.create_service(
        cluster=p["CLUSTER_NAME"],
        serviceName="svc999-service",
        taskDefinition="scale12_svc999",
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [p["PRIVATE_SUBNET_1"]],
                "securityGroups": [p["ECS_SG"]],
            }
        },
    )
    logs.create_log_group(logGroupName="/ecs/scale12_svc999")
    emulator.clock.advance(1)
    before = account_snapshot(emulator)

    in_second, go_on = threading.Event(), threading.Event()

    def hold(turn: int, handler: Any) -> Any:
        def run(event: dict[str, Any], context: Any) -> Any:
            if turn == 2:
                in_second.set()
                go_on.wait(120)
            return handler(event, context)

        return run

    around_loop_turns(emulator, hold)
    spec = many_services(emulator, 12)
    arn = emulator.start_build(spec)
    if not in_second.wait(60):
        d = emulator.wait(arn)
        raise AssertionError((d["status"], d.get("error"), d.get("cause")))
    emulator.client("stepfunctions").stop_execution(executionArn=arn, cause="hostile stop")
    go_on.set()
    assert emulator.wait(arn)["status"] in ("ABORTED", "FAILED")
    teardown = emulator.wait(
        emulator.start_teardown(
            {**spec, "deleteLogGroups": True, "deregisterTaskDefinitions": True}
        )
    )
    assert teardown["status"] == "SUCCEEDED", teardown.get("cause")
    assert account_snapshot(emulator) == before
    assert ecs_service(emulator, "svc999-service")["status"] == "ACTIVE"


def test_two_different_specs_of_one_environment_at_once_only_one_builds(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    other = copy.deepcopy(workshop_spec)
    other["services"] = other["services"][:1]
    other["services"][0]["image"] = "nginx:1.27"
    a = emulator.start_build(workshop_spec, name="a")
    b = emulator.start_build(other, name="b")
    outcomes = {arn: emulator.wait(arn) for arn in (a, b)}
    statuses = sorted(d["status"] for d in outcomes.values())
    assert statuses == ["FAILED", "SUCCEEDED"]
    loser = next(d for d in outcomes.values() if d["status"] == "FAILED")
    assert loser["error"] == "EnvironmentBusy"
    winner_spec = workshop_spec if outcomes[a]["status"] == "SUCCEEDED" else other
    no_changes_rerun(emulator, winner_spec)


def test_ecs_exec_in_defaults_warns_once_per_service(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    from envbuild import report

    emulator.client("iam").delete_role_policy(RoleName="ecsTaskRole", PolicyName="EcsExec")
    spec = {**copy.deepcopy(workshop_spec), "serviceDefaults": {"enableExecuteCommand": True}}
    spec["services"][2]["enableExecuteCommand"] = False
    described, history = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    warnings = report.warnings_from_history(history)
    assert len(warnings) == 2, warnings
    assert any("service web " in w for w in warnings) and any("service api " in w for w in warnings)
    assert ecs_service(emulator, "db-service").get("enableExecuteCommand") is False
    plan, _ = planned(emulator, spec)
    assert len(plan.get("warnings", [])) == 2, plan.get("warnings")


def test_removing_a_tag_key_from_defaults_and_top_level_untags_everything(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = {
        **copy.deepcopy(workshop_spec),
        "tags": {"team": "a", "gone": "x"},
        "serviceDefaults": {"tags": {"cost": "1", "old": "y"}},
    }
    built(emulator, spec)
    edited = {
        **copy.deepcopy(workshop_spec),
        "tags": {"team": "a"},
        "serviceDefaults": {"tags": {"cost": "1"}},
    }
    built(emulator, edited)
    sd, ecs, logs = (emulator.client(s) for s in ("servicediscovery", "ecs", "logs"))
    ns = sd.list_namespaces()["Namespaces"][0]
    ns_tags = {t["Key"] for t in sd.list_tags_for_resource(ResourceARN=ns["Arn"])["Tags"]}
    assert "gone" not in ns_tags and "team" in ns_tags
    d = ecs.describe_task_definition(taskDefinition="workshop_web", include=["TAGS"])
    keys = {t["key"] for t in d["tags"]}
    assert not ({"gone", "old"} & keys) and {"team", "cost"} <= keys
    assert d["taskDefinition"]["revision"] == 1
    svc = ecs_service(emulator, "web-service")
    keys = {t["key"] for t in ecs.list_tags_for_resource(resourceArn=svc["serviceArn"])["tags"]}
    assert not ({"gone", "old"} & keys)
    group = [
        g for g in logs.describe_log_groups(logGroupNamePrefix="/ecs/workshop_web")["logGroups"]
    ][0]
    gtags = logs.list_tags_for_resource(resourceArn=group["arn"].rstrip(":*"))["tags"]
    assert not ({"gone", "old"} & set(gtags))
    no_changes_rerun(emulator, edited)


def test_cli_teardown_refuses_a_spec_over_256_kib(tmp_path: Path) -> None:
    path = _multibyte_spec(tmp_path)
    result = _cli("teardown", str(path), "--output", "json", cwd=REPO)
    assert result.returncode != 0
    combined = result.stdout + result.stderr
    assert "KiB" in combined, combined[-2000:]


def test_defaults_autoscaling_with_every_service_setting_a_valid_desired_count_builds(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Every service sets desiredCount 2, within the default scaler's 2..8: nothing is bad, and
    serviceDefaults sets no desiredCount, so none may be named."""
    spec = copy.deepcopy(workshop_spec)
    for s in spec["services"]:
        s["desiredCount"] = 2
    spec["serviceDefaults"] = {
        "autoscaling": {"minCount": 2, "maxCount": 8, "targetCpuPercent": 60}
    }
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")


def test_a_bad_own_desired_count_is_not_blamed_on_service_defaults(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Only db's own desiredCount (1) is outside the default scaler's 2..8; serviceDefaults sets
    no desiredCount, so the error must name services[2].desiredCount and not
    serviceDefaults.desiredCount (a field the spec does not contain)."""
    spec = copy.deepcopy(workshop_spec)
    spec["serviceDefaults"] = {
        "autoscaling": {"minCount": 2, "maxCount": 8, "targetCpuPercent": 60}
    }
    described, _ = run_build(emulator, spec)
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidSpec"
    assert "services[2].desiredCount" in described["cause"]
    assert "serviceDefaults.desiredCount" not in described["cause"], described["cause"]


@pytest.mark.parametrize(
    ("defaults", "own"),
    [
        ({"cpu": "1024"}, {"memory": "2048"}),
        ({"memory": "2048"}, {"cpu": "1024"}),
    ],
    ids=["default-cpu-own-memory", "default-memory-own-cpu"],
)
def test_defaults_cpu_memory_split_with_services_builds(
    emulator: Any, workshop_spec: dict[str, Any], defaults: dict[str, Any], own: dict[str, Any]
) -> None:
    """Each service ends with cpu 1024 / memory 2048 (a valid Fargate size): half from the
    defaults, half its own."""
    spec = copy.deepcopy(workshop_spec)
    for s in spec["services"]:
        s.pop("cpu"), s.pop("memory")
        s.update(own)
    spec["serviceDefaults"] = defaults
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    d = td(emulator, "workshop_web")
    assert (d["cpu"], d["memory"]) == ("1024", "2048")


def test_defaults_depends_on_a_sidecar_each_service_declares_builds(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = copy.deepcopy(workshop_spec)
    for s in spec["services"]:
        s["sidecars"] = [{"name": "log-router", "image": "amazon/aws-for-fluent-bit:stable"}]
    spec["serviceDefaults"] = {"dependsOn": [{"container": "log-router", "condition": "START"}]}
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    main = td(emulator, "workshop_web")["containerDefinitions"][0]
    assert main["dependsOn"] == [{"containerName": "log-router", "condition": "START"}]


def test_defaults_arm64_with_spot_overridden_by_each_services_own_architecture_is_valid(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Every service runs X86_64 on FARGATE_SPOT (allowed); ARM64 is only a default none takes."""
    spec = copy.deepcopy(workshop_spec)
    for s in spec["services"]:
        s["cpuArchitecture"] = "X86_64"
    spec["serviceDefaults"] = {
        "cpuArchitecture": "ARM64",
        "capacityProviders": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    }
    described, _ = run_build(emulator, spec)
    assert described.get("error") != "InvalidSpec", described.get("cause")


def test_a_defaults_secret_shadowed_by_a_defaults_environment_no_service_takes(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """serviceDefaults gives both environment X and secret X, but every service has its own
    environment (no X): each service ends with X only as a secret, which is valid."""
    arn = emulator.client("secretsmanager").create_secret(Name="shop/x", SecretString="x")["ARN"]
    spec = copy.deepcopy(workshop_spec)
    spec["services"][2]["environment"] = {"MODE": "db"}
    spec["serviceDefaults"] = {"environment": {"X": "plain"}, "secrets": {"X": arn}}
    described, _ = run_build(emulator, spec)
    assert described.get("error") != "InvalidSpec", described.get("cause")


def test_removing_a_defaults_service_override_ecs_cannot_reset_is_noted_in_the_plan(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = copy.deepcopy(workshop_spec)
    spec["serviceDefaults"] = {"overrides": {"service": {"availabilityZoneRebalancing": "ENABLED"}}}
    built(emulator, spec)
    bare = copy.deepcopy(workshop_spec)
    plan, _ = planned(emulator, bare)
    ecs_rows = [r for r in plan["changes"] if r["kind"] == "ecsService"]
    assert len(ecs_rows) == 3
    for r in ecs_rows:
        assert "availabilityZoneRebalancing" in json.dumps(r), r
    built(emulator, bare)
    no_changes_rerun(emulator, bare)


def test_cli_refuses_a_spec_that_is_over_256_kib_once_its_vars_are_filled(tmp_path: Path) -> None:
    """The file is small; ${BIG} from the environment makes the execution input ~300 KiB."""
    spec = json.loads((REPO / "events" / "workshop.json").read_text())
    spec["services"][0]["environment"] = {f"BIG{i}": "${BIG" + str(i) + "}" for i in range(3)}
    path = tmp_path / "vars.json"
    path.write_text(json.dumps(spec))
    exe = REPO / ".venv" / "bin" / "envbuild"
    result = subprocess.run(
        [str(exe), "plan", str(path), "--output", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **{f"BIG{i}": "a" * 100 * 1024 for i in range(3)}},
    )
    assert result.returncode != 0
    combined = result.stdout + result.stderr
    assert "KiB" in combined, combined[-1500:]
    assert "InvalidExecutionInput" not in combined, combined[-1500:]
