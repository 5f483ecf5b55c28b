"""Issue 17 through the whole build on the emulator: events/production-like.json (every new spec
field) is built, and each field is read back where ECS, Cloud Map, Route 53 and CloudWatch Logs
keep it; a failing container health check keeps the tasks out of DNS and fails the build naming
the service and its health check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fill

from .helpers import run_build

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def production_like(emulator: Any) -> dict[str, Any]:
    """The example with the emulated account's ids, and the secrets it names created."""
    secret = emulator.client("secretsmanager").create_secret(
        Name="shop/db", SecretString=json.dumps({"password": "not-a-real-one"})
    )
    emulator.client("ssm").put_parameter(
        Name="/shop/fluent-bit-token", Type="SecureString", Value="token", Overwrite=True
    )
    text = (REPO / "events" / "production-like.json").read_text()
    return dict(json.loads(fill(text, {**emulator.prerequisites, "DB_SECRET_ARN": secret["ARN"]})))


def test_the_production_like_spec_builds_and_each_field_lands_where_aws_keeps_it(
    emulator: Any,
) -> None:
    spec = production_like(emulator)
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    ecs, sd, logs = (emulator.client(s) for s in ("ecs", "servicediscovery", "logs"))
    cluster = emulator.prerequisites["CLUSTER_NAME"]

    definition = ecs.describe_task_definition(taskDefinition="shop_web", include=["TAGS"])
    web_td = definition["taskDefinition"]
    main, sidecar = web_td["containerDefinitions"]
    assert main["command"] == ["nginx", "-g", "daemon off;"]
    assert main["entryPoint"] == ["/docker-entrypoint.sh"]
    assert main["healthCheck"]["command"] == ["CMD-SHELL", "curl -fs http://localhost/ || exit 1"]
    assert main["dependsOn"] == [{"containerName": "log-router", "condition": "START"}]
    assert main["stopTimeout"] == 30  # overrides.container
    assert sidecar["name"] == "log-router"
    assert sidecar["essential"] is False
    assert [s["name"] for s in sidecar["secrets"]] == ["FLB_TOKEN"]
    assert web_td["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    assert web_td["ephemeralStorage"] == {"sizeInGiB": 30}  # overrides.taskDefinition
    tags = {t["key"]: t["value"] for t in definition["tags"]}
    assert (tags["team"], tags["tier"], tags["envbuild:managed"]) == (
        "payments",
        "frontend",
        "true",
    )

    api_td = ecs.describe_task_definition(taskDefinition="shop_api")["taskDefinition"]
    (api_container,) = api_td["containerDefinitions"]
    assert api_container["secrets"][0]["name"] == "DB_PASSWORD"
    assert api_container["secrets"][0]["valueFrom"].endswith(":password::")
    assert ":secret:shop/db-" in api_container["secrets"][0]["valueFrom"]

    found = ecs.describe_services(cluster=cluster, services=["web-service", "api-service"])
    web, api = sorted(found["services"], key=lambda s: s["serviceName"], reverse=True)
    assert web["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}]  # fmt: skip
    assert "launchType" not in web
    assert web["enableExecuteCommand"] is True
    assert web["platformVersion"] == "1.4.0"
    assert web["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    assert web["healthCheckGracePeriodSeconds"] == 30  # overrides.service
    assert web["serviceRegistries"][0]["containerName"] == "web"
    assert web["serviceRegistries"][0]["containerPort"] == 80
    assert [p["capacityProvider"] for p in api["capacityProviderStrategy"]] == ["FARGATE", "FARGATE_SPOT"]  # fmt: skip
    subnets = api["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
    assert subnets == [emulator.prerequisites["PRIVATE_SUBNET_2"]]  # the service's own network

    registries = {s["Name"]: s for s in sd.list_services()["Services"]}
    web_registry = sd.get_service(Id=registries["web"]["Id"])["Service"]
    assert [r["Type"] for r in web_registry["DnsConfig"]["DnsRecords"]] == ["A", "SRV"]
    health = sd.get_instances_health_status(ServiceId=registries["web"]["Id"])["Status"]
    assert set(health.values()) == {"HEALTHY"}

    scaling = emulator.client("application-autoscaling")
    (target,) = scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert target["ResourceId"] == f"service/{cluster}/web-service"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 6)
    policies = scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    assert {
        p["PolicyName"]: p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]
        for p in policies
    } == {"web-service-cpu": 60.0, "web-service-memory": 75.0}

    retention = {
        g["logGroupName"]: g.get("retentionInDays")
        for g in logs.describe_log_groups(logGroupNamePrefix="/ecs/shop_")["logGroups"]
    }
    assert retention == {"/ecs/shop_web": 14, "/ecs/shop_api": 90, "/ecs/shop_db": None}


def test_a_failing_health_check_keeps_the_tasks_out_of_dns_and_fails_the_build_naming_it(
    emulator: Any,
) -> None:
    spec = production_like(emulator)
    spec["onFailure"] = "keep"
    emulator.world.faults.containers_unhealthy("web-service")
    described, _ = run_build(emulator, spec)
    assert described["status"] == "FAILED"
    cause = json.loads(described["cause"])["errorMessage"]
    assert described["error"] == "DeploymentFailed", cause
    assert "web-service" in cause
    assert "failed container health checks" in cause
    assert "healthCheck of web (CMD-SHELL curl -fs http://localhost/ || exit 1) fails" in cause
    sd = emulator.client("servicediscovery")
    registries = {s["Name"]: s for s in sd.list_services()["Services"]}
    found = sd.discover_instances(NamespaceName="shop.local", ServiceName="web", HealthStatus="HEALTHY")  # fmt: skip
    assert found["Instances"] == []
    assert registries["web"]["Id"]


def test_a_rerun_of_the_production_like_spec_makes_no_mutating_call_on_the_environment(
    emulator: Any,
) -> None:
    from collections import Counter

    from envbuild_emulator.aws_faults import is_mutating

    spec = production_like(emulator)
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    emulator.aws_faults.calls.clear()
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    calls = Counter(
        {
            key: n
            for key, n in emulator.aws_faults.calls.items()
            if is_mutating(key[1]) and n and key[0] not in ("dynamodb", "events", "stepfunctions")
        }
    )
    assert calls == Counter()


def test_the_scaler_owns_the_count_edits_converge_and_teardown_deregisters_the_target_first(
    emulator: Any,
) -> None:
    spec = production_like(emulator)
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    ecs = emulator.client("ecs")
    scaling = emulator.client("application-autoscaling")
    cluster = emulator.prerequisites["CLUSTER_NAME"]

    # The scaler moved web to 4 tasks: a re-run leaves the count alone.
    ecs.update_service(cluster=cluster, service="web-service", desiredCount=4)
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    (web,) = ecs.describe_services(cluster=cluster, services=["web-service"])["services"]
    assert web["desiredCount"] == 4

    # Edited limits and no memory target: the target and policies follow.
    spec["services"][0]["autoscaling"] = {"minCount": 2, "maxCount": 8, "targetCpuPercent": 50}
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    (target,) = scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert target["MaxCapacity"] == 8
    policies = scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    assert [
        (p["PolicyName"], p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"])
        for p in policies
    ] == [("web-service-cpu", 50.0)]

    # Teardown: nothing is left, the scalable target included.
    described = emulator.wait(emulator.start_teardown(spec))
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []


def test_removing_autoscaling_from_the_spec_deregisters_the_target(emulator: Any) -> None:
    spec = production_like(emulator)
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    del spec["services"][0]["autoscaling"]
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    scaling = emulator.client("application-autoscaling")
    assert scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []


def test_a_secret_that_does_not_exist_fails_the_preflight_naming_it_before_any_change(
    emulator: Any,
) -> None:
    spec = production_like(emulator)
    missing = spec["services"][1]["secrets"]["DB_PASSWORD"].replace("shop/db-", "shop/gone-")
    spec["services"][1]["secrets"]["DB_PASSWORD"] = missing
    described, _ = run_build(emulator, spec)
    assert described["status"] == "FAILED"
    assert described["error"] == "PreflightFailed"
    cause = json.loads(described["cause"])["errorMessage"]
    assert "secret arn:aws:secretsmanager:" in cause
    assert "shop/gone-" in cause
    assert "(api.secrets.DB_PASSWORD) does not exist in Secrets Manager" in cause
    assert emulator.client("ecs").list_task_definitions()["taskDefinitionArns"] == []


def test_editing_the_new_fields_is_planned_applied_and_then_unchanged(emulator: Any) -> None:
    """Edits of issue 17's fields on a built environment: the plan lists them, the build
    applies them (ECS, CloudWatch Logs), and a re-run then changes nothing."""
    from tests.workflow.test_convergence_paths import planned

    spec = production_like(emulator)
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    ecs, logs = emulator.client("ecs"), emulator.client("logs")
    cluster = emulator.prerequisites["CLUSTER_NAME"]

    api = spec["services"][1]
    api["enableExecuteCommand"] = True
    api["deployment"] = {"minimumHealthyPercent": 50, "maximumPercent": 150}
    api["command"] = ["httpd-foreground", "-X"]
    api["logRetentionDays"] = 7
    web = spec["services"][0]
    web["healthCheck"]["interval"] = 20

    plan, _ = planned(emulator, spec)
    changed = {(r["kind"], r["name"]): r["fields"] for r in plan["changes"] if r["action"] == "update"}  # fmt: skip
    assert changed[("ecsService", "api-service")]["enableExecuteCommand"] == [False, True]
    assert changed[("ecsService", "api-service")]["deploymentConfiguration.maximumPercent"] == [200, 150]  # fmt: skip
    assert changed[("taskDefinition", "shop_api")]["command"] == [None, ["httpd-foreground", "-X"]]
    assert changed[("taskDefinition", "shop_web")]["healthCheck.interval"] == [10, 20]

    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    (api_service,) = ecs.describe_services(cluster=cluster, services=["api-service"])["services"]
    assert api_service["enableExecuteCommand"] is True
    assert api_service["deploymentConfiguration"]["maximumPercent"] == 150
    definition = ecs.describe_task_definition(taskDefinition=api_service["taskDefinition"])
    assert definition["taskDefinition"]["containerDefinitions"][0]["command"] == ["httpd-foreground", "-X"]  # fmt: skip
    web_td = ecs.describe_task_definition(taskDefinition="shop_web")["taskDefinition"]
    assert web_td["containerDefinitions"][0]["healthCheck"]["interval"] == 20
    (group,) = logs.describe_log_groups(logGroupNamePrefix="/ecs/shop_api")["logGroups"]
    assert group["retentionInDays"] == 7

    again, _ = planned(emulator, spec)
    assert [r for r in again["changes"] if r["action"] not in ("unchanged", "adopt")] == []
