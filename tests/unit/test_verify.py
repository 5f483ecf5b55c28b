"""Verifying discovery and the build's summary (functions/envbuild_lambda/steps/verify.py).

moto's ECS tasks never start, so the running tasks come from a fake ECS client; Cloud Map's
answers come from a fake (logic tests) or from moto's DiscoverInstances (the real client path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from envbuild_lambda.aws import Caller, Clients
from envbuild_lambda.errors import DiscoveryMismatch
from envbuild_lambda.spec import EnvironmentSpec, parse_spec
from envbuild_lambda.state import NamespaceState, Poll
from envbuild_lambda.steps import verify

from .conftest import ACCOUNT, REGION, workshop_spec

REGISTRIES = {"web": "srv-web0000000001", "api": "srv-api0000000001", "db": "srv-db00000000001"}
TASK_DEFINITIONS = {"web": "workshop_web:1", "api": "workshop_api:3", "db": "workshop_db:1"}
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

    def paginate(
        self, cluster: str, desiredStatus: str, serviceName: str | None = None
    ) -> Iterator[dict[str, Any]]:
        assert desiredStatus == "RUNNING"
        services = [serviceName] if serviceName else list(self.ecs.tasks)
        arns = [
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{service}-{i}"
            for service in services
            for i in range(len(self.ecs.tasks.get(service, [])))
        ]
        pages = [{"taskArns": arns[i : i + 100]} for i in range(0, len(arns), 100)] or [
            {"taskArns": []}
        ]
        for _ in pages:  # a page is a call: counted as it is read
            self.ecs.calls.append(f"ListTasks {serviceName or cluster}")
            yield _


class FakeEcs:
    """ListTasks (per service or the whole cluster, 100 a page) / DescribeTasks (at most 100 per
    call, each task with its group "service:<name>") of the running tasks of each ECS service;
    ``tasks`` may hold services the spec does not list (foreign tasks in a shared cluster).
    ``calls`` records every call."""

    def __init__(self, tasks: dict[str, list[dict[str, Any]]]) -> None:
        self.tasks = tasks
        self.calls: list[str] = []

    def get_paginator(self, name: str) -> TaskPages:
        assert name == "list_tasks"
        return TaskPages(self)

    def describe_tasks(self, cluster: str, tasks: list[str]) -> dict[str, Any]:
        if len(tasks) > 100:
            raise AssertionError("DescribeTasks takes at most 100 tasks")
        self.calls.append("DescribeTasks")
        found = []
        for arn in tasks:
            service, index = arn.rsplit("/", 1)[1].rsplit("-", 1)
            found.append(
                {**self.tasks[service][int(index)], "taskArn": arn, "group": f"service:{service}"}
            )
        return {"tasks": found}


class FakeCloudMap:
    """DiscoverInstances (HealthStatus ALL): the healthy instances' AWS_INSTANCE_IPV4 for
    <service>.<namespace> (instance id = IP), HEALTHY, and the ``unhealthy`` ones, UNHEALTHY;
    ListInstances / GetInstancesHealthStatus answer the same (``calls`` records every call)."""

    def __init__(
        self, answers: dict[str, list[str]], unhealthy: dict[str, str] | None = None
    ) -> None:
        self.answers = answers
        self.unhealthy = unhealthy or {}  # instance id -> registry id (an UNHEALTHY instance)
        self.calls: list[str] = []

    def discover_instances(
        self, NamespaceName: str, ServiceName: str, HealthStatus: str, **kwargs: Any
    ) -> dict[str, Any]:
        assert NamespaceName == "workshop.local"
        assert HealthStatus == "ALL"
        self.calls.append(f"DiscoverInstances {ServiceName}")
        registry = REGISTRIES.get(ServiceName, f"srv-{ServiceName}")
        return {
            "Instances": [
                {
                    "InstanceId": ip,
                    "Attributes": {"AWS_INSTANCE_IPV4": ip},
                    "HealthStatus": "HEALTHY",
                }
                for ip in self.answers.get(ServiceName, [])
            ]
            + [
                {"InstanceId": i, "Attributes": {}, "HealthStatus": "UNHEALTHY"}
                for i, owner in self.unhealthy.items()
                if owner == registry
            ]
        }

    def _name(self, service_id: str) -> str:
        by_id = {registry: name for name, registry in REGISTRIES.items()}
        return by_id.get(service_id) or service_id.removeprefix("srv-")

    def get_paginator(self, name: str) -> Any:
        assert name == "list_instances"
        self.calls.append("ListInstances")
        return InstancePages(self)

    def get_instances_health_status(self, ServiceId: str, MaxResults: int) -> dict[str, Any]:
        self.calls.append(f"GetInstancesHealthStatus {ServiceId}")
        name = (
            next(n for n, i in REGISTRIES.items() if i == ServiceId)
            if ServiceId in REGISTRIES.values()
            else ServiceId.removeprefix("srv-")
        )
        status = dict.fromkeys(self.answers.get(name, []), "HEALTHY")
        status |= {
            i: "UNHEALTHY" for i, registry in self.unhealthy.items() if registry == ServiceId
        }
        return {"Status": status}


class InstancePages:
    """ListInstances: every instance (healthy or not) with its attributes."""

    def __init__(self, cloud_map: FakeCloudMap) -> None:
        self.cloud_map = cloud_map

    def paginate(self, ServiceId: str) -> list[dict[str, Any]]:
        name = self.cloud_map._name(ServiceId)
        instances = [
            {"Id": ip, "Attributes": {"AWS_INSTANCE_IPV4": ip}}
            for ip in self.cloud_map.answers.get(name, [])
        ]
        instances += [
            {"Id": i, "Attributes": {}}
            for i, registry in self.cloud_map.unhealthy.items()
            if registry == ServiceId
        ]
        return [{"Instances": instances}]


class RecordPages:
    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records

    def paginate(self, HostedZoneId: str) -> list[dict[str, Any]]:
        assert HostedZoneId == NAMESPACE.hostedZoneId
        sets = [{"Name": "workshop.local.", "Type": "SOA", "ResourceRecords": [{"Value": "x"}]}]
        for name, ips in self.records.items():
            sets += [
                {
                    "Name": f"{name}.workshop.local.",
                    "Type": "A",
                    "SetIdentifier": ip,
                    "MultiValueAnswer": True,
                    "ResourceRecords": [{"Value": ip}],
                }
                for ip in ips
            ]
        return [{"ResourceRecordSets": sets}]


class FakeRoute53:
    """ListResourceRecordSets of the namespace's hosted zone: one multivalue A set per IP."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records

    def get_paginator(self, name: str) -> RecordPages:
        assert name == "list_resource_record_sets"
        return RecordPages(self.records)


def fake_clients(ecs: Any, servicediscovery: Any, route53: Any = None) -> Clients:
    """Route 53 holds exactly what Cloud Map answers unless ``route53`` says otherwise."""
    if route53 is None:
        answers = getattr(servicediscovery, "answers", None)
        route53 = FakeRoute53(answers if answers is not None else HEALTHY)
    clients = Clients.__new__(Clients)
    clients.__dict__.update(ecs=ecs, servicediscovery=servicediscovery, route53=route53)
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
    assert message.startswith("1 of 3 DNS name(s) fail the three-way check")
    assert (
        "api.workshop.local (service api): Cloud Map (DiscoverInstances HEALTHY) missing"
        f" ['10.0.2.11'] ({verify.CAUSE_NOT_REGISTERED})" in message
    )
    assert (
        f"Cloud Map (DiscoverInstances HEALTHY) extra ['10.0.9.99'] ({verify.CAUSE_STALE_INSTANCE})"
        in message
    )
    assert "web.workshop.local" not in message


def test_a_task_not_registered_and_too_few_tasks_are_both_mismatches(
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
    assert message.startswith("2 of 3 DNS name(s)")
    assert (
        "web.workshop.local (service web): ECS runs 1 task(s) of web-service, desired 2" in message
    )
    assert (
        "db.workshop.local (service db): Cloud Map (DiscoverInstances HEALTHY) missing"
        " ['10.0.1.12'] (tasks not yet registered in Cloud Map" in message
    )


def test_a_route53_record_missing_names_the_route53_leg(
    workshop: EnvironmentSpec, caller: Caller
) -> None:
    records = {**HEALTHY, "web": ["10.0.1.10"]}  # Cloud Map answers two, the zone holds one
    clients = fake_clients(ecs_with(HEALTHY), FakeCloudMap(HEALTHY), FakeRoute53(records))
    with pytest.raises(DiscoveryMismatch) as caught:
        verify.verify(clients, caller, workshop, NAMESPACE, REGISTRIES, TASK_DEFINITIONS, 3)
    message = str(caught.value)
    assert message.startswith("1 of 3 DNS name(s)")
    assert (
        f"web.workshop.local (service web): Route 53 A records missing ['10.0.2.10'] ({verify.CAUSE_RECORD_MISSING})"
        in message
    )


def test_a_stale_route53_record_is_an_extra_with_the_ttl_as_likely_cause(
    workshop: EnvironmentSpec, caller: Caller
) -> None:
    records = {**HEALTHY, "db": ["10.0.1.12", "10.0.4.4"]}
    clients = fake_clients(ecs_with(HEALTHY), FakeCloudMap(HEALTHY), FakeRoute53(records))
    with pytest.raises(
        DiscoveryMismatch,
        match=r"db.workshop.local \(service db\): Route 53 A records extra \['10.0.4.4'\] \(.*TTL expires",
    ):
        verify.verify(clients, caller, workshop, NAMESPACE, REGISTRIES, TASK_DEFINITIONS, 3)


def test_an_unhealthy_instance_is_reported_by_id_and_ip(
    workshop: EnvironmentSpec, caller: Caller
) -> None:
    cloud_map = FakeCloudMap(HEALTHY, unhealthy={"10.0.7.7": REGISTRIES["api"]})
    clients = fake_clients(ecs_with(HEALTHY), cloud_map)
    with pytest.raises(DiscoveryMismatch) as caught:
        verify.verify(clients, caller, workshop, NAMESPACE, REGISTRIES, TASK_DEFINITIONS, 3)
    assert "api.workshop.local (service api): instance 10.0.7.7 (no IPv4) is UNHEALTHY" in str(
        caught.value
    )


def test_static_instances_are_expected_answers_and_shown_with_their_attributes(
    caller: Caller,
) -> None:
    raw = workshop_spec()
    raw["services"][0]["instances"] = [
        {"id": "10.0.3.100", "ipv4": "10.0.3.100", "attributes": {"version": "1.0"}}
    ]
    spec = parse_spec(raw)
    answers = {**HEALTHY, "web": [*HEALTHY["web"], "10.0.3.100"]}
    summary = verify.verify(
        fake_clients(ecs_with(HEALTHY), FakeCloudMap(answers)),
        caller,
        spec,
        NAMESPACE,
        REGISTRIES,
        TASK_DEFINITIONS,
        3,
    )
    web = summary["services"][0]
    assert web["ips"] == ["10.0.1.10", "10.0.2.10", "10.0.3.100"]
    # the fake's DiscoverInstances shows only AWS_INSTANCE_IPV4: the summary shows what Cloud Map has
    assert web["staticInstances"] == [
        {
            "id": "10.0.3.100",
            "ipv4": "10.0.3.100",
            "attributes": {"AWS_INSTANCE_IPV4": "10.0.3.100"},
        }
    ]
    # the ECS tasks' instances are the DNS name's ips; only static instances get an entry
    assert "staticInstances" not in summary["services"][1]
    # a static instance Cloud Map does not answer with is a mismatch like an unregistered task
    with pytest.raises(DiscoveryMismatch, match=r"missing \['10.0.3.100'\]"):
        verify.verify(
            fake_clients(ecs_with(HEALTHY), FakeCloudMap(HEALTHY)),
            caller,
            spec,
            NAMESPACE,
            REGISTRIES,
            TASK_DEFINITIONS,
            3,
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
    real_cloud_map = fake_clients(ecs_with(HEALTHY), sd, FakeRoute53(HEALTHY))
    summary = verify.verify(
        real_cloud_map, caller, workshop, NAMESPACE, registries, TASK_DEFINITIONS, max_workers=3
    )
    assert [s["ips"] for s in summary["services"]] == [
        HEALTHY["web"],
        HEALTHY["api"],
        HEALTHY["db"],
    ]


def test_verify_lists_the_cluster_s_tasks_once_and_reads_cloud_map_once_per_service(
    static_spec: dict[str, Any], caller: Caller
) -> None:
    """20 services: ListTasks of the cluster (one page), one DescribeTasks, one DiscoverInstances
    (HealthStatus ALL) per service, no ListInstances / GetInstancesHealthStatus; the foreign
    tasks of the shared cluster are described but never counted as the spec's."""
    static_spec["services"] = [
        {"name": f"s{i:02d}", "image": "nginx", "port": 80, "desiredCount": 1} for i in range(20)
    ]
    spec = parse_spec(static_spec)
    ips = {f"s{i:02d}": [f"10.0.1.{i + 1}"] for i in range(20)}
    ecs = ecs_with(ips)
    ecs.tasks["other-service"] = [task(f"10.0.9.{i}") for i in range(30)]  # not ours
    cloud_map = FakeCloudMap(ips)
    summary = verify.verify(
        fake_clients(ecs, cloud_map, FakeRoute53(ips)),
        caller,
        spec,
        NAMESPACE,
        {name: f"srv-{name}" for name in ips},
        {name: f"workshop-{name}:1" for name in ips},
        4,
    )
    assert [s["ips"] for s in summary["services"]] == list(ips.values())
    assert ecs.calls == [f"ListTasks {spec.cluster}", "DescribeTasks"]
    assert sorted(cloud_map.calls) == sorted(f"DiscoverInstances {name}" for name in ips)


def test_a_cluster_full_of_foreign_tasks_is_listed_per_service(
    static_spec: dict[str, Any], caller: Caller
) -> None:
    """3 services in a cluster of 250 foreign tasks: the cluster's listing would take 3 pages +
    3 DescribeTasks, not fewer than 3 ListTasks per service: after the pages that show it, the
    tasks are listed per service, and the foreign ones never count."""
    static_spec["services"] = [
        {"name": f"s{i}", "image": "nginx", "port": 80, "desiredCount": 1} for i in range(3)
    ]
    spec = parse_spec(static_spec)
    ips = {f"s{i}": [f"10.0.1.{i + 1}"] for i in range(3)}
    ecs = ecs_with(ips)
    ecs.tasks["zz-foreign"] = [task(f"10.0.{8 + i // 200}.{i % 200 + 1}") for i in range(250)]
    summary = verify.verify(
        fake_clients(ecs, FakeCloudMap(ips), FakeRoute53(ips)),
        caller,
        spec,
        NAMESPACE,
        {name: f"srv-{name}" for name in ips},
        {name: f"workshop-{name}:1" for name in ips},
        1,
    )
    assert [s["ips"] for s in summary["services"]] == list(ips.values())
    # the cluster's first page (100 tasks) alone projects 1 + 1 = 2 calls; the second page 2 + 2
    assert ecs.calls == [f"ListTasks {spec.cluster}"] * 2 + [
        *(f"ListTasks s{i}-service" for i in range(3)),
        "DescribeTasks",
    ]


def test_an_unhealthy_instance_is_read_from_discover_instances_alone(
    workshop: EnvironmentSpec, caller: Caller
) -> None:
    cloud_map = FakeCloudMap(HEALTHY, unhealthy={"10.0.7.7": REGISTRIES["api"]})
    with pytest.raises(DiscoveryMismatch, match=r"instance 10\.0\.7\.7 \(no IPv4\) is UNHEALTHY"):
        verify.verify(
            fake_clients(ecs_with(HEALTHY), cloud_map),
            caller,
            workshop,
            NAMESPACE,
            REGISTRIES,
            TASK_DEFINITIONS,
            3,
        )
    assert sorted(cloud_map.calls) == sorted(f"DiscoverInstances {name}" for name in HEALTHY)
