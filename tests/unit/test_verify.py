"""Verifying discovery and the build's summary (functions/envbuild_lambda/steps/verify.py).

moto's ECS tasks never start, so the running tasks come from a fake ECS client; Cloud Map's
answers come from a fake (logic tests) or from moto's DiscoverInstances (the real client path)."""

from __future__ import annotations

from typing import Any

import pytest

from envbuild_lambda.aws import Caller, Clients
from envbuild_lambda.errors import DiscoveryMismatch
from envbuild_lambda.spec import EnvironmentSpec, parse_spec
from envbuild_lambda.state import NamespaceState, Poll
from envbuild_lambda.steps import verify

from .conftest import ACCOUNT, REGION, workshop_spec

REGISTRIES = {"web": "srv-web0000000001", "api": "srv-api0000000001", "db": "srv-db00000000001"}
TASK_DEFINITIONS = {"web": "workshop-web:1", "api": "workshop-api:3", "db": "workshop-db:1"}
NAMESPACE = NamespaceState(
    name="workshop.local",
    vpcId="vpc-0a1b2c3d4e5f60718",
    id="ns-abcdefghijklmnop",
    arn=f"arn:aws:servicediscovery:{REGION}:{ACCOUNT}:namespace/ns-abcdefghijklmnop",
    hostedZoneId="Z0123456789ABCDEFGHIJ",
    operationId="op-1",
    status="SUCCESS",
    poll=Poll(attempt=2, waitSeconds=20, maxAttempts=20),
)
HEALTHY = {
    "web": ["10.0.1.10", "10.0.2.10"],
    "api": ["10.0.1.11", "10.0.2.11"],
    "db": ["10.0.1.12"],
}


def task(ip: str, status: str = "RUNNING") -> dict[str, Any]:
    return {
        "lastStatus": status,
        "attachments": [
            {
                "type": "ElasticNetworkInterface",
                "details": [
                    {"name": "subnetId", "value": "subnet-0a1b2c3d4e5f60001"},
                    {"name": "privateIPv4Address", "value": ip},
                ],
            }
        ],
    }


class TaskPages:
    def __init__(self, ecs: FakeEcs) -> None:
        self.ecs = ecs

    def paginate(self, cluster: str, serviceName: str, desiredStatus: str) -> list[dict[str, Any]]:
        arns = [
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{serviceName}-{i}"
            for i in range(len(self.ecs.tasks[serviceName]))
        ]
        return [{"taskArns": arns[i : i + 100]} for i in range(0, len(arns), 100)] or [
            {"taskArns": []}
        ]


class FakeEcs:
    """ListTasks / DescribeTasks of the running tasks of each ECS service (at most 100 per DescribeTasks)."""

    def __init__(self, tasks: dict[str, list[dict[str, Any]]]) -> None:
        self.tasks = tasks

    def get_paginator(self, name: str) -> TaskPages:
        assert name == "list_tasks"
        return TaskPages(self)

    def describe_tasks(self, cluster: str, tasks: list[str]) -> dict[str, Any]:
        if len(tasks) > 100:
            raise AssertionError("DescribeTasks takes at most 100 tasks")
        found = []
        for arn in tasks:
            service, index = arn.rsplit("/", 1)[1].rsplit("-", 1)
            found.append(self.tasks[service][int(index)])
        return {"tasks": found}


class FakeCloudMap:
    """DiscoverInstances: the healthy instances' AWS_INSTANCE_IPV4 for <service>.<namespace>."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    def discover_instances(
        self, NamespaceName: str, ServiceName: str, HealthStatus: str, **kwargs: Any
    ) -> dict[str, Any]:
        assert NamespaceName == "workshop.local"
        assert HealthStatus == "HEALTHY"
        return {
            "Instances": [
                {"InstanceId": ip, "Attributes": {"AWS_INSTANCE_IPV4": ip}}
                for ip in self.answers.get(ServiceName, [])
            ]
        }


def fake_clients(ecs: Any, servicediscovery: Any) -> Clients:
    clients = Clients.__new__(Clients)
    clients.__dict__.update(ecs=ecs, servicediscovery=servicediscovery)
    return clients


def ecs_with(ips: dict[str, list[str]]) -> FakeEcs:
    return FakeEcs(
        {f"{name}-service": [task(ip) for ip in addresses] for name, addresses in ips.items()}
    )


@pytest.fixture
def workshop() -> EnvironmentSpec:
    return parse_spec(workshop_spec())


def test_matching_ips_give_the_build_summary(workshop: EnvironmentSpec, caller: Caller) -> None:
    clients = fake_clients(ecs_with(HEALTHY), FakeCloudMap(HEALTHY))
    summary = verify.verify(
        clients, caller, workshop, NAMESPACE, REGISTRIES, TASK_DEFINITIONS, max_workers=3
    )
    assert summary == {
        "environment": "workshop",
        "namespace": {
            "name": "workshop.local",
            "id": "ns-abcdefghijklmnop",
            "arn": f"arn:aws:servicediscovery:{REGION}:{ACCOUNT}:namespace/ns-abcdefghijklmnop",
            "hostedZoneId": "Z0123456789ABCDEFGHIJ",
            "adopted": False,
        },
        "cluster": "workshop-cluster",
        "services": [
            {
                "name": name,
                "dnsName": f"{name}.workshop.local",
                "ips": HEALTHY[name],
                "registryId": REGISTRIES[name],
                "ecsService": f"{name}-service",
                "taskDefinition": TASK_DEFINITIONS[name],
            }
            for name in ("web", "api", "db")
        ],
    }


def test_summary_ips_are_sorted_and_stopped_tasks_ignored(
    workshop: EnvironmentSpec, caller: Caller
) -> None:
    ecs = ecs_with({"web": ["10.0.2.9", "10.0.1.200"], "api": HEALTHY["api"], "db": HEALTHY["db"]})
    ecs.tasks["web-service"].append(task("10.0.3.3", status="STOPPED"))
    answers = {**HEALTHY, "web": ["10.0.2.9", "10.0.1.200"]}
    summary = verify.verify(
        fake_clients(ecs, FakeCloudMap(answers)),
        caller,
        workshop,
        NAMESPACE,
        REGISTRIES,
        TASK_DEFINITIONS,
        2,
    )
    assert summary["services"][0]["ips"] == ["10.0.1.200", "10.0.2.9"]


def test_summary_uses_the_cluster_name_when_the_spec_names_an_arn(caller: Caller) -> None:
    raw = workshop_spec()
    raw["cluster"] = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/workshop-cluster"
    spec = parse_spec(raw)
    summary = verify.verify(
        fake_clients(ecs_with(HEALTHY), FakeCloudMap(HEALTHY)),
        caller,
        spec,
        NAMESPACE,
        REGISTRIES,
        TASK_DEFINITIONS,
        1,
    )
    assert summary["cluster"] == "workshop-cluster"
    assert summary["services"][2]["ecsService"] == "db-service"


def test_mismatch_names_the_dns_name_and_the_missing_and_extra_ips(
    workshop: EnvironmentSpec, caller: Caller
) -> None:
    answers = {**HEALTHY, "api": ["10.0.1.11", "10.0.9.99"]}
    clients = fake_clients(ecs_with(HEALTHY), FakeCloudMap(answers))
    with pytest.raises(DiscoveryMismatch) as caught:
        verify.verify(
            clients, caller, workshop, NAMESPACE, REGISTRIES, TASK_DEFINITIONS, max_workers=3
        )
    message = str(caught.value)
    assert message.startswith("1 DNS name(s) do not answer with the running tasks' IPs")
    assert "api.workshop.local: answers ['10.0.1.11', '10.0.9.99']" in message
    assert "running tasks ['10.0.1.11', '10.0.2.11'] (desired 2)" in message
    assert "missing ['10.0.2.11']" in message
    assert "extra ['10.0.9.99']" in message
    assert "web.workshop.local" not in message


def test_a_name_that_answers_nothing_and_too_few_tasks_are_both_mismatches(
    workshop: EnvironmentSpec, caller: Caller
) -> None:
    running = {**HEALTHY, "web": ["10.0.1.10"]}  # desired 2, one running, answered
    answers = {**HEALTHY, "web": ["10.0.1.10"], "db": []}
    clients = fake_clients(ecs_with(running), FakeCloudMap(answers))
    with pytest.raises(DiscoveryMismatch) as caught:
        verify.verify(
            clients, caller, workshop, NAMESPACE, REGISTRIES, TASK_DEFINITIONS, max_workers=3
        )
    message = str(caught.value)
    assert message.startswith("2 DNS name(s)")
    assert (
        "web.workshop.local: answers ['10.0.1.10'], running tasks ['10.0.1.10'] (desired 2)"
        in message
    )
    assert (
        "db.workshop.local: answers nothing, running tasks ['10.0.1.12'] (desired 1); missing ['10.0.1.12']"
        in message
    )


def test_more_than_a_hundred_tasks_are_described_in_batches(
    static_spec: dict[str, Any], caller: Caller
) -> None:
    static_spec["services"] = [{"name": "big", "image": "nginx", "port": 80, "desiredCount": 230}]
    spec = parse_spec(static_spec)
    ips = [f"10.0.{i // 200}.{i % 200 + 1}" for i in range(230)]
    clients = fake_clients(ecs_with({"big": ips}), FakeCloudMap({"big": ips}))
    summary = verify.verify(
        clients, caller, spec, NAMESPACE, {"big": "srv-big"}, {"big": "workshop-big:1"}, 1
    )
    assert summary["services"][0]["ips"] == sorted(ips)


def test_verify_reads_cloud_map_through_a_real_client(
    clients: Clients, caller: Caller, workshop: EnvironmentSpec
) -> None:
    """The DiscoverInstances request is valid for botocore (the fakes above accept anything)."""
    sd = clients.servicediscovery
    operation = sd.create_private_dns_namespace(Name="workshop.local", Vpc="vpc-0a1b2c3d4e5f60718")[
        "OperationId"
    ]
    namespace_id = sd.get_operation(OperationId=operation)["Operation"]["Targets"]["NAMESPACE"]
    registries = {}
    for name, ips in HEALTHY.items():
        registries[name] = sd.create_service(Name=name, NamespaceId=namespace_id)["Service"]["Id"]
        for ip in ips:
            sd.register_instance(
                ServiceId=registries[name],
                InstanceId=f"{name}-{ip}",
                Attributes={"AWS_INSTANCE_IPV4": ip},
            )
    real_cloud_map = fake_clients(ecs_with(HEALTHY), sd)
    summary = verify.verify(
        real_cloud_map, caller, workshop, NAMESPACE, registries, TASK_DEFINITIONS, max_workers=3
    )
    assert [s["ips"] for s in summary["services"]] == [
        HEALTHY["web"],
        HEALTHY["api"],
        HEALTHY["db"],
    ]
