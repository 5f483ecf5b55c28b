"""Issue 17 on the emulator: the requests steps/desired.py renders for events/production-like.json
are accepted, kept and described as AWS keeps and describes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from envbuild_emulator.models import World
from envbuild_lambda.aws import Caller
from envbuild_lambda.spec import EnvironmentSpec, normalize, parse_spec
from envbuild_lambda.steps import desired

from .conftest import REGION, Clients, Network

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
CALLER = Caller(partition="aws", region=REGION, account_id=ACCOUNT)
CLUSTER = "shop-cluster"


def production_like(network: Network) -> EnvironmentSpec:
    subnets = list(network.subnets)
    values = {
        "VPC_ID": network.vpc_id, "CLUSTER_NAME": CLUSTER, "PRIVATE_SUBNET_1": subnets[0],
        "PRIVATE_SUBNET_2": subnets[1], "ECS_SG": network.security_group,
        "EXECUTION_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole",
        "TASK_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/ecsTaskRole", "AWS_REGION": REGION,
        "ACCOUNT_ID": ACCOUNT,
        "DB_SECRET_ARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:shop/db-AbCdEf",
    }  # fmt: skip
    text = (REPO / "events" / "production-like.json").read_text()
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return normalize(parse_spec(json.loads(text)), partition="aws", account_id=ACCOUNT)


@pytest.fixture
def built(world: World, aws: Clients, network: Network, make_namespace: Any) -> dict[str, Any]:
    spec = production_like(network)
    namespace_id = make_namespace(spec.namespace.name, network.vpc_id)
    aws.ecs.create_cluster(clusterName=CLUSTER, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    out: dict[str, Any] = {"spec": spec, "registries": {}, "definitions": {}}
    for service in spec.services:
        tags = desired.tags(spec, service, "build-1")
        registry = aws.sd.create_service(
            **desired.sent(desired.registry(spec, service)),
            NamespaceId=namespace_id,
            Tags=desired.cloud_map_tags(tags),
        )["Service"]
        assert spec.executionRoleArn is not None
        assert spec.taskRoleArn is not None
        definition = desired.task_definition(
            CALLER, spec.environment, service, spec.executionRoleArn, spec.taskRoleArn
        )
        registered = aws.ecs.register_task_definition(
            **desired.sent(definition), tags=desired.ecs_tags(tags)
        )["taskDefinition"]
        revision = f"{registered['family']}:{registered['revision']}"
        wanted = desired.ecs_service(CALLER, spec, service, registry["Id"], revision)
        aws.ecs.create_service(
            **desired.sent(wanted),
            **desired.sent(desired.create_only(spec, service)),
            tags=desired.ecs_tags(tags),
        )
        out["registries"][service.name] = registry
        out["definitions"][service.name] = (definition, revision, wanted)
    return out


def test_the_rendered_requests_land_where_aws_keeps_them(
    aws: Clients, built: dict[str, Any]
) -> None:
    _, revision, _ = built["definitions"]["web"]
    described = aws.ecs.describe_task_definition(taskDefinition=revision)["taskDefinition"]
    main, sidecar = described["containerDefinitions"]
    assert main["healthCheck"]["command"] == ["CMD-SHELL", "curl -fs http://localhost/ || exit 1"]
    assert main["dependsOn"] == [{"containerName": "log-router", "condition": "START"}]
    assert main["command"] == ["nginx", "-g", "daemon off;"]
    assert sidecar["secrets"][0]["name"] == "FLB_TOKEN"
    assert described["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    (web,) = aws.ecs.describe_services(cluster=CLUSTER, services=["web-service"])["services"]
    assert web["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE", "weight": 1, "base": 1}
    ]
    assert web["enableExecuteCommand"] is True
    assert web["platformVersion"] == "1.4.0"
    assert web["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    assert web["serviceRegistries"][0]["containerName"] == "web"
    registry = aws.sd.get_service(Id=built["registries"]["web"]["Id"])["Service"]
    assert [r["Type"] for r in registry["DnsConfig"]["DnsRecords"]] == ["A", "SRV"]


def holds(wanted: Any, have: Any, path: str = "") -> list[str]:
    """Where ``have`` (a described resource) lacks a rendered field: every key of ``wanted``
    (None: absent or empty), lists element by element; AWS's additions do not count."""
    if wanted is None:
        return [] if have in (None, [], {}, "") else [f"{path}: {have!r} is set"]
    if isinstance(wanted, dict):
        if not isinstance(have, dict):
            return [f"{path}: {have!r}"]
        return [p for k, v in wanted.items() for p in holds(v, have.get(k), f"{path}.{k}")]
    if isinstance(wanted, list):
        if not isinstance(have, list) or len(have) != len(wanted):
            return [f"{path}: {have!r} != {wanted!r}"]
        return [p for i, (w, h) in enumerate(zip(wanted, have, strict=True)) for p in holds(w, h, f"{path}[{i}]")]  # fmt: skip
    return [] if wanted == have else [f"{path}: {have!r} != {wanted!r}"]


def test_every_rendered_field_is_described_back_as_rendered(
    aws: Clients, built: dict[str, Any]
) -> None:
    """What a re-run's diff compares: DescribeTaskDefinition, DescribeServices and Cloud Map's
    GetService hold every field desired.py renders, with its value (0 differences)."""
    spec = built["spec"]
    for name, (definition, revision, wanted) in built["definitions"].items():
        described = aws.ecs.describe_task_definition(taskDefinition=revision)["taskDefinition"]
        assert holds(definition, described) == [], name
        (service,) = aws.ecs.describe_services(cluster=CLUSTER, services=[f"{name}-service"])["services"]  # fmt: skip
        have = {**service, "taskDefinition": service["taskDefinition"].rsplit("/", 1)[-1]}
        assert holds(wanted, have) == [], name
        registry = aws.sd.get_service(Id=built["registries"][name]["Id"])["Service"]
        assert holds(desired.registry(spec, spec.service(name)), registry) == [], name


def test_a_service_on_capacity_providers_runs_its_tasks(
    world: World, aws: Clients, built: dict[str, Any]
) -> None:
    world.clock.advance(world.latencies.task_start_seconds)
    (api,) = aws.ecs.describe_services(cluster=CLUSTER, services=["api-service"])["services"]
    assert "launchType" not in api
    assert api["runningCount"] == 2


def test_a_capacity_provider_the_cluster_lacks_or_a_launch_type_beside_one_is_refused(
    aws: Clients, network: Network, built: dict[str, Any]
) -> None:
    aws.ecs.create_cluster(clusterName="bare")
    common = {
        "serviceName": "x-service",
        "taskDefinition": "shop_db:1",
        "desiredCount": 1,
        "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": list(network.subnets), "securityGroups": [network.security_group]}
        },
    }  # fmt: skip
    spot = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    with pytest.raises(aws.ecs.exceptions.InvalidParameterException, match="not associated"):
        aws.ecs.create_service(cluster="bare", capacityProviderStrategy=spot, **common)
    with pytest.raises(aws.ecs.exceptions.InvalidParameterException, match="launch type"):
        aws.ecs.create_service(
            cluster=CLUSTER, capacityProviderStrategy=spot, launchType="FARGATE", **common
        )


# --- container health checks, reported to Cloud Map -----------------------------------------


def _records(aws: Clients, zone_id: str, name: str, rtype: str) -> list[str]:
    sets = aws.route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return sorted(
        r["Value"]
        for s in sets
        if s["Type"] == rtype and s["Name"] == name
        for r in s["ResourceRecords"]
    )


def _zone(aws: Clients, built: dict[str, Any]) -> str:
    namespace_id = built["registries"]["web"]["NamespaceId"]
    namespace = aws.sd.get_namespace(Id=namespace_id)["Namespace"]
    return str(namespace["Properties"]["DnsProperties"]["HostedZoneId"])


def _web_tasks(aws: Clients) -> list[dict[str, Any]]:
    arns = aws.ecs.list_tasks(cluster=CLUSTER, serviceName="web-service")["taskArns"]
    return list(aws.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]) if arns else []


def test_a_task_is_in_dns_once_its_health_check_passes_with_its_srv_port(
    world: World, aws: Clients, built: dict[str, Any]
) -> None:
    """web: healthCheck interval 10, startPeriod 15; dnsRecords A and SRV."""
    registry_id = built["registries"]["web"]["Id"]
    zone = _zone(aws, built)
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    tasks = _web_tasks(aws)
    assert {t["healthStatus"] for t in tasks} == {"UNKNOWN"}
    health = aws.sd.get_instances_health_status(ServiceId=registry_id)["Status"]
    assert set(health.values()) == {"UNHEALTHY"}
    assert _records(aws, zone, "web.shop.local.", "A") == []

    world.clock.advance(15 + 10)
    tasks = _web_tasks(aws)
    assert {t["healthStatus"] for t in tasks} == {"HEALTHY"}
    health = aws.sd.get_instances_health_status(ServiceId=registry_id)["Status"]
    assert health == {t["taskArn"].rsplit("/", 1)[-1]: "HEALTHY" for t in tasks}
    ips = sorted(
        d["value"]
        for t in tasks
        for d in t["attachments"][0]["details"]
        if d["name"] == "privateIPv4Address"
    )
    assert _records(aws, zone, "web.shop.local.", "A") == ips
    assert _records(aws, zone, "web.shop.local.", "SRV") == sorted(
        f"1 1 80 {t['taskArn'].rsplit('/', 1)[-1]}.web.shop.local." for t in tasks
    )
    discovered = aws.sd.discover_instances(
        NamespaceName="shop.local", ServiceName="web", HealthStatus="HEALTHY"
    )["Instances"]
    assert {i["Attributes"]["AWS_INSTANCE_PORT"] for i in discovered} == {"80"}


def test_a_failing_health_check_keeps_the_task_out_of_dns_and_ecs_replaces_it(
    world: World, aws: Clients, network: Network, make_namespace: Any, request: Any
) -> None:
    world.faults.containers_unhealthy("web-service")
    built = request.getfixturevalue("built")
    zone = _zone(aws, built)
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    world.clock.advance(15 + 10 * 3)  # startPeriod + interval * retries
    stopped = aws.ecs.list_tasks(cluster=CLUSTER, serviceName="web-service", desiredStatus="STOPPED")["taskArns"]  # fmt: skip
    described = aws.ecs.describe_tasks(cluster=CLUSTER, tasks=stopped)["tasks"]
    assert len(described) == 2
    assert {t["stoppedReason"] for t in described} == {"Task failed container health checks"}
    assert {t["healthStatus"] for t in described} == {"UNHEALTHY"}
    assert _records(aws, zone, "web.shop.local.", "A") == []
    (web,) = aws.ecs.describe_services(cluster=CLUSTER, services=["web-service"])["services"]
    assert any("failed container health checks" in e["message"] for e in web["events"])
    assert web["deployments"][0]["failedTasks"] == 2


def test_a_static_instance_without_a_port_is_refused_by_a_registry_with_srv(
    aws: Clients, built: dict[str, Any]
) -> None:
    registry_id = built["registries"]["web"]["Id"]
    with pytest.raises(aws.sd.exceptions.InvalidInput, match="AWS_INSTANCE_PORT"):
        aws.sd.register_instance(
            ServiceId=registry_id, InstanceId="legacy", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.9"}
        )
