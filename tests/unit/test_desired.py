"""steps/desired.py: issue 17's fields rendered into the AWS requests.

Every rendered request of events/production-like.json is accepted by botocore's own input shapes
(what the SDK sends to AWS); each field lands where ECS, Cloud Map, CloudWatch Logs and
Application Auto Scaling keep it; a field removed from the spec renders as None (the diff sees
it go), a field AWS defaults renders as AWS's default."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from envbuild_lambda.aws import Caller
from envbuild_lambda.spec import EnvironmentSpec, normalize, parse_spec
from envbuild_lambda.steps import desired
from tests.conftest import fill

REPO = Path(__file__).resolve().parents[2]
CALLER = Caller(partition="aws", region="us-east-1", account_id="111122223333")
PREREQUISITES = {
    "VPC_ID": "vpc-0123456789abcdef0", "CLUSTER_NAME": "shop-cluster",
    "PRIVATE_SUBNET_1": "subnet-0123456789abcdef0", "PRIVATE_SUBNET_2": "subnet-0123456789abcdef1",
    "ECS_SG": "sg-0123456789abcdef0", "EXECUTION_ROLE_ARN": "arn:aws:iam::111122223333:role/e",
    "TASK_ROLE_ARN": "arn:aws:iam::111122223333:role/t", "AWS_REGION": "us-east-1",
    "ACCOUNT_ID": "111122223333",
    "DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:shop/db-AbCdEf",
}  # fmt: skip
SESSION = botocore.session.get_session()


def production_like() -> dict[str, Any]:
    text = (REPO / "events" / "production-like.json").read_text()
    return dict(json.loads(fill(text, PREREQUISITES)))


def parsed(raw: dict[str, Any]) -> EnvironmentSpec:
    return normalize(parse_spec(raw), partition="aws", account_id="111122223333")


def valid(service: str, operation: str, request: dict[str, Any]) -> None:
    shape = SESSION.get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


def rendered(spec: EnvironmentSpec, name: str) -> dict[str, Any]:
    service = spec.service(name)
    assert spec.executionRoleArn is not None
    assert spec.taskRoleArn is not None
    return {
        "registry": desired.registry(spec, service),
        "taskDefinition": desired.task_definition(
            CALLER, spec.environment, service, spec.executionRoleArn, spec.taskRoleArn
        ),
        "ecsService": desired.ecs_service(CALLER, spec, service, "srv-abc", "shop_web:1"),
        "createOnly": desired.create_only(spec, service),
        "tags": desired.tags(spec, service, "build-1"),
    }


@pytest.mark.parametrize("name", ["web", "api", "db"])
def test_every_rendered_request_of_the_production_like_spec_is_valid_for_botocore(
    name: str,
) -> None:
    spec = parsed(production_like())
    service = spec.service(name)
    r = rendered(spec, name)
    valid(
        "servicediscovery",
        "CreateService",
        {**desired.sent(r["registry"]), "NamespaceId": "ns-1", "Tags": desired.cloud_map_tags(r["tags"])},
    )  # fmt: skip
    valid(
        "ecs",
        "RegisterTaskDefinition",
        {**desired.sent(r["taskDefinition"]), "tags": desired.ecs_tags(r["tags"])},
    )
    valid(
        "ecs",
        "CreateService",
        {
            **desired.sent(r["ecsService"]),
            **desired.sent(r["createOnly"]),
            "tags": desired.ecs_tags(r["tags"]),
            "clientToken": "t",
        },
    )
    valid(
        "ecs",
        "UpdateService",
        {**desired.sent(r["ecsService"]), "cluster": spec.cluster, "service": service.ecs_service_name},
    )  # fmt: skip
    target = desired.scalable_target(spec, service)
    if target is not None:
        valid("application-autoscaling", "RegisterScalableTarget", target)
    for policy in desired.scaling_policies(spec, service):
        valid("application-autoscaling", "PutScalingPolicy", policy)


def test_each_field_of_the_web_service_lands_in_its_request() -> None:
    spec = parsed(production_like())
    r = rendered(spec, "web")
    definition = r["taskDefinition"]
    main, sidecar = definition["containerDefinitions"]
    assert main["command"] == ["nginx", "-g", "daemon off;"]
    assert main["entryPoint"] == ["/docker-entrypoint.sh"]
    assert main["healthCheck"] == {
        "command": ["CMD-SHELL", "curl -fs http://localhost/ || exit 1"],
        "interval": 10,
        "timeout": 5,
        "retries": 3,
        "startPeriod": 15,
    }
    assert main["dependsOn"] == [{"containerName": "log-router", "condition": "START"}]
    assert main["stopTimeout"] == 30  # overrides.container
    assert sidecar["name"] == "log-router"
    assert sidecar["essential"] is False
    assert sidecar["secrets"] == [
        {"name": "FLB_TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:111122223333:parameter/shop/fluent-bit-token"}
    ]  # fmt: skip
    assert sidecar["portMappings"] == [{"containerPort": 2020, "protocol": "tcp"}]
    assert (sidecar["cpu"], sidecar["memory"]) == (64, 128)
    assert sidecar["logConfiguration"]["options"]["awslogs-group"] == "/ecs/shop_web"
    assert definition["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}  # fmt: skip
    assert definition["ephemeralStorage"] == {"sizeInGiB": 30}  # overrides.taskDefinition

    service = r["ecsService"]
    assert "desiredCount" not in service  # autoscaling owns it: never compared nor updated
    assert r["createOnly"]["desiredCount"] == 2  # the initial count
    assert service["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}]  # fmt: skip
    assert r["createOnly"]["launchType"] is None
    assert service["enableExecuteCommand"] is True
    assert service["platformVersion"] == "1.4.0"
    assert service["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "minimumHealthyPercent": 50,
        "maximumPercent": 200,
    }
    assert service["serviceRegistries"] == [
        {
            "registryArn": "arn:aws:servicediscovery:us-east-1:111122223333:service/srv-abc",
            "containerName": "web",
            "containerPort": 80,
        }
    ]
    assert (
        service["healthCheckGracePeriodSeconds"] == 30
    )  # overrides.service (UpdateService has it)
    assert r["registry"]["DnsConfig"]["DnsRecords"] == [
        {"Type": "A", "TTL": 60},
        {"Type": "SRV", "TTL": 60},
    ]
    assert r["tags"] == {
        "team": "payments",
        "cost-center": "cc-1234",
        "tier": "frontend",
        "envbuild:environment": "shop",
        "envbuild:managed": "true",
        "envbuild:build": "build-1",
    }
    assert desired.log_retention(spec, spec.service("web")) == 14
    assert desired.log_retention(spec, spec.service("api")) == 90
    assert desired.log_retention(spec, spec.service("db")) is None
    assert desired.scalable_target(spec, spec.service("web")) == {
        "ServiceNamespace": "ecs",
        "ResourceId": "service/shop-cluster/web-service",
        "ScalableDimension": "ecs:service:DesiredCount",
        "MinCapacity": 2,
        "MaxCapacity": 6,
    }
    policies = desired.scaling_policies(spec, spec.service("web"))
    assert [p["PolicyName"] for p in policies] == ["web-service-cpu", "web-service-memory"]
    assert [p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies] == [60.0, 75.0]  # fmt: skip


def test_the_per_service_network_replaces_the_top_level_one() -> None:
    spec = parsed(production_like())
    api = desired.ecs_service(CALLER, spec, spec.service("api"), "srv-abc", "shop_api:1")
    db = desired.ecs_service(CALLER, spec, spec.service("db"), "srv-abc", "shop_db:1")
    assert api["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-0123456789abcdef1"]  # fmt: skip
    assert db["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == [
        "subnet-0123456789abcdef0",
        "subnet-0123456789abcdef1",
    ]


def test_fields_left_unset_render_as_none_or_as_the_default_aws_describes() -> None:
    raw = production_like()
    raw["services"] = [{"name": "db", "image": "redis", "port": 6379}]
    spec = parsed(raw)
    r = rendered(spec, "db")
    (main,) = r["taskDefinition"]["containerDefinitions"]
    for field in ("command", "entryPoint", "healthCheck", "dependsOn"):
        assert main[field] is None, field
    assert main["secrets"] == []
    assert r["taskDefinition"]["runtimePlatform"] is None
    service = r["ecsService"]
    assert service["desiredCount"] == 1
    assert service["capacityProviderStrategy"] is None
    assert r["createOnly"]["launchType"] == "FARGATE"
    assert service["platformVersion"] == "LATEST"  # what DescribeServices returns by default
    assert service["enableExecuteCommand"] is False
    assert service["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    assert service["deploymentConfiguration"]["maximumPercent"] == 200
    assert service["serviceRegistries"] == [
        {
            "registryArn": "arn:aws:servicediscovery:us-east-1:111122223333:service/srv-abc",
            "containerName": None,  # not sent; an entry naming them is a difference
            "containerPort": None,
        }
    ]
    assert r["registry"]["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 60}]
    assert desired.scalable_target(spec, spec.service("db")) is None
    assert desired.scaling_policies(spec, spec.service("db")) == []
    assert desired.log_retention(spec, spec.service("db")) == 14
    assert desired.sent(main) == {
        k: v for k, v in main.items() if k not in ("command", "entryPoint", "healthCheck", "dependsOn")
    }  # fmt: skip


def test_a_static_instance_of_a_service_with_srv_records_is_registered_with_the_port() -> None:
    raw = production_like()
    raw["services"] = [
        {
            "name": "db",
            "image": "redis",
            "port": 6379,
            "desiredCount": 0,
            "dnsRecords": ["A", "SRV"],
            "instances": [{"id": "legacy", "ipv4": "10.0.3.100"}],
        }
    ]
    spec = parsed(raw)
    service = spec.service("db")
    assert desired.instance_attributes(service, service.instances[0]) == {
        "AWS_INSTANCE_IPV4": "10.0.3.100",
        "AWS_INSTANCE_PORT": "6379",
    }


def test_overrides_only_createservice_takes_go_with_the_create_only_fields() -> None:
    raw = production_like()
    raw["services"] = [
        {
            "name": "db",
            "image": "redis",
            "port": 6379,
            "overrides": {"service": {"schedulingStrategy": "REPLICA", "healthCheckGracePeriodSeconds": 5}},
        }
    ]  # fmt: skip
    spec = parsed(raw)
    r = rendered(spec, "db")
    assert r["createOnly"]["schedulingStrategy"] == "REPLICA"
    assert "schedulingStrategy" not in r["ecsService"]
    assert r["ecsService"]["healthCheckGracePeriodSeconds"] == 5


def test_rendering_a_spec_with_every_field_is_pure_and_repeatable() -> None:
    spec = parsed(production_like())
    first = rendered(spec, "web")
    again = rendered(parsed(copy.deepcopy(production_like())), "web")
    assert first == again
