"""ECS Fargate services attached to their registries, and their readiness
(functions/envbuild_lambda/steps/services.py), on moto with its VPC, subnets, security group and
cluster. moto's tasks never start: MOTO_ECS_SERVICE_RUNNING (read when a service is created) sets
the running count, and instances are registered in Cloud Map by the test, as ECS would."""

from __future__ import annotations

from typing import Any

import pytest

from envbuild_lambda.aws import Caller, Clients
from envbuild_lambda.errors import (
    AwsRequestFailed,
    CloudMapOperationFailed,
    DeploymentFailed,
    ResourceNotFound,
    ServiceConflict,
)
from envbuild_lambda.settings import PollSchedule
from envbuild_lambda.spec import EnvironmentSpec, StaticInstance
from envbuild_lambda.state import Poll, ServicesState
from envbuild_lambda.steps import desired, registries, services, task_definitions

from .conftest import ACCOUNT, REGION, Override, client_error

SERVICES_POLL = PollSchedule(first_seconds=10, interval_seconds=20, max_attempts=40)


def prepare(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> tuple[dict[str, str], dict[str, str]]:
    """What the earlier steps made: registries in a namespace and task definitions."""
    sd = clients.servicediscovery
    operation = sd.create_private_dns_namespace(Name=spec.namespace.name, Vpc=spec.namespace.vpcId)[
        "OperationId"
    ]
    namespace_id = sd.get_operation(OperationId=operation)["Operation"]["Targets"]["NAMESPACE"]
    registry_ids = registries.create_or_adopt_registries(clients, spec, namespace_id, max_workers=4)
    definitions = {
        s.name: task_definitions.register(
            clients,
            caller,
            spec.environment,
            s,
            spec.executionRoleArn or "",
            spec.taskRoleArn or "",
        ).taskDefinition
        for s in spec.services
    }
    return registry_ids, definitions


def describe(clients: Clients, spec: EnvironmentSpec, *names: str) -> dict[str, dict[str, Any]]:
    answer = clients.ecs.describe_services(
        cluster=spec.cluster, services=list(names), include=["TAGS"]
    )
    return {s["serviceName"]: s for s in answer["services"]}


def register_instances(
    clients: Clients, registry_id: str, ips: list[str], service: str = "", cluster: str = ""
) -> None:
    """Instances as ECS registers a service's tasks (with the attributes ECS sets); without
    ``service`` as anyone else could register them."""
    for i, ip in enumerate(ips):
        ecs = {"ECS_SERVICE_NAME": service, "ECS_CLUSTER_NAME": cluster} if service else {}
        clients.servicediscovery.register_instance(
            ServiceId=registry_id,
            InstanceId=f"task-{registry_id}-{i}",
            Attributes={"AWS_INSTANCE_IPV4": ip, **ecs},
        )


def register_tasks(
    clients: Clients, spec: EnvironmentSpec, registry_ids: dict[str, str], **ips: list[str]
) -> None:
    """Each service's tasks (service name -> IPs), registered as ECS registers them."""
    for name, addresses in ips.items():
        register_instances(
            clients, registry_ids[name], addresses, f"{name}-service", spec.cluster_name
        )


# --- create_or_adopt_services ----------------------------------------------------------------------


def test_creates_fargate_services_attached_to_their_registries(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    state, _rows = services.create_or_adopt_services(
        clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
    )
    assert state == ServicesState(
        ready=False,
        poll=Poll(attempt=0, waitSeconds=10, maxAttempts=40),
        actions={"web-service": "created", "api-service": "created", "db-service": "created"},
    )
    described = describe(clients, spec, "web-service", "api-service", "db-service")
    for service in spec.services:
        ecs_service = described[service.ecs_service_name]
        assert ecs_service["status"] == "ACTIVE"
        assert ecs_service["launchType"] == "FARGATE"
        assert ecs_service["desiredCount"] == service.desiredCount
        assert ecs_service["taskDefinition"] == (
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{definitions[service.name]}"
        )
        assert ecs_service["networkConfiguration"] == {
            "awsvpcConfiguration": {
                "subnets": spec.network.subnets,
                "securityGroups": spec.network.securityGroups,
                "assignPublicIp": "DISABLED",
            }
        }
        assert ecs_service["serviceRegistries"] == [
            {
                "registryArn": f"arn:aws:servicediscovery:{REGION}:{ACCOUNT}:service/{registry_ids[service.name]}"
            }
        ]
        assert {t["key"]: t["value"] for t in ecs_service["tags"]} == {
            "envbuild:environment": "workshop",
            "envbuild:managed": "true",
        }


@pytest.mark.parametrize(
    ("caller", "arn"),
    [
        (
            Caller("aws", "us-east-1", "123456789012"),
            "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-1",
        ),
        (
            Caller("aws-cn", "cn-north-1", "210987654321"),
            "arn:aws-cn:servicediscovery:cn-north-1:210987654321:service/srv-1",
        ),
        (
            Caller("aws-us-gov", "us-gov-west-1", "111122223333"),
            "arn:aws-us-gov:servicediscovery:us-gov-west-1:111122223333:service/srv-1",
        ),
    ],
)
def test_registry_arn_is_built_from_the_callers_partition_region_and_account(
    caller: Caller, arn: str
) -> None:
    assert services.registry_arn(caller, "srv-1") == arn


def test_assign_public_ip_of_the_spec_is_used(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    spec = network_spec.model_copy(
        update={"network": network_spec.network.model_copy(update={"assignPublicIp": "ENABLED"})}
    )
    registry_ids, definitions = prepare(clients, caller, spec)
    services.create_or_adopt_services(
        clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
    )
    web = describe(clients, spec, "web-service")["web-service"]
    assert web["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "ENABLED"


def test_an_active_service_envbuild_does_not_own_is_a_conflict_and_left_alone(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    """Preflight finds it (steps/ownership.py); this is the last guard (issue 14 item 6)."""
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    clients.ecs.create_service(
        cluster=spec.cluster,
        serviceName="web-service",
        taskDefinition=definitions["web"],
        desiredCount=5,
        serviceRegistries=[{"registryArn": services.registry_arn(caller, registry_ids["web"])}],
    )
    with pytest.raises(ServiceConflict, match=r"web-service .* is not envbuild's for environment"):
        services.create_or_adopt_services(
            clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
        )
    assert describe(clients, spec, "web-service")["web-service"]["desiredCount"] == 5
    assert len(clients.ecs.list_services(cluster=spec.cluster)["serviceArns"]) == 1


def test_a_rerun_rolls_only_the_services_envbuild_manages_to_the_spec(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    """web gets a new revision and desired count; api and db (unchanged) are left alone."""
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    services.create_or_adopt_services(
        clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
    )
    for name in ("web-service", "api-service", "db-service"):
        # plain moto drops CreateService's deploymentConfiguration (the emulator and ECS keep
        # it); its UpdateService keeps it
        clients.ecs.update_service(
            cluster=spec.cluster,
            service=name,
            deploymentConfiguration={
                **desired.CIRCUIT_BREAKER,
                "minimumHealthyPercent": desired.DEFAULT_MINIMUM_HEALTHY_PERCENT,
                "maximumPercent": desired.DEFAULT_MAXIMUM_PERCENT,
            },
            enableExecuteCommand=False,  # ECS's default, which plain moto does not describe
        )
    web = spec.service("web").model_copy(update={"image": "nginx:1.27", "desiredCount": 3})
    changed = spec.model_copy(update={"services": [web, spec.service("api"), spec.service("db")]})
    new_definitions = {
        s.name: task_definitions.register(
            clients,
            caller,
            spec.environment,
            s,
            spec.executionRoleArn or "",
            spec.taskRoleArn or "",
        ).taskDefinition
        for s in changed.services
    }
    assert new_definitions == {
        "web": "workshop_web:2",
        "api": "workshop_api:1",
        "db": "workshop_db:1",
    }
    state, rows = services.create_or_adopt_services(
        clients, caller, changed, registry_ids, new_definitions, SERVICES_POLL, 4
    )

    assert [(r.name, r.action, r.fields) for r in rows] == [
        (
            "web-service",
            "update",
            {"taskDefinition": ["workshop_web:1", "workshop_web:2"], "desiredCount": [2, 3]},
        ),
        ("api-service", "unchanged", {}),
        ("db-service", "unchanged", {}),
    ]
    assert state.previous is not None
    assert state.previous.services == {
        "web-service": {
            "taskDefinition": "workshop_web:1",
            "desiredCount": 2,
            "networkConfiguration": describe(clients, spec, "web-service")["web-service"][
                "networkConfiguration"
            ],
        }
    }

    assert state.actions == {
        "web-service": "updated",
        "api-service": "adopted",
        "db-service": "adopted",
    }
    after = describe(clients, spec, "web-service", "api-service", "db-service")
    assert after["web-service"]["taskDefinition"].endswith("workshop_web:2")
    assert after["web-service"]["desiredCount"] == 3
    assert after["api-service"]["taskDefinition"].endswith("workshop_api:1")
    assert after["api-service"]["desiredCount"] == 2
    assert after["db-service"]["taskDefinition"].endswith("workshop_db:1")


def test_an_active_service_attached_elsewhere_is_a_conflict_and_left_alone(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    clients.ecs.create_service(
        cluster=spec.cluster,
        serviceName="api-service",
        taskDefinition=definitions["api"],
        desiredCount=3,
        tags=[{"key": k, "value": v} for k, v in spec.resource_tags().items()],  # envbuild's
    )
    with pytest.raises(
        ServiceConflict, match=r"api-service already exists .* no Cloud Map registry"
    ):
        services.create_or_adopt_services(
            clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
        )
    assert describe(clients, spec, "api-service")["api-service"]["desiredCount"] == 3
    assert len(clients.ecs.list_services(cluster=spec.cluster)["serviceArns"]) == 1


def test_an_inactive_service_is_created_again(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    clients.ecs.create_service(
        cluster=spec.cluster,
        serviceName="db-service",
        taskDefinition=definitions["db"],
        desiredCount=0,
    )
    clients.ecs.delete_service(cluster=spec.cluster, service="db-service")
    assert describe(clients, spec, "db-service")["db-service"]["status"] == "INACTIVE"
    state, _rows = services.create_or_adopt_services(
        clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
    )
    assert state.actions["db-service"] == "created"


def test_a_draining_service_is_a_conflict(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    real = clients.ecs

    def draining(
        **kwargs: Any,
    ) -> dict[str, Any]:  # moto goes straight to INACTIVE; AWS drains first
        answer = real.describe_services(**kwargs)
        services_ = [
            {"serviceName": n, "status": "DRAINING"} if n == "api-service" else None
            for n in kwargs["services"]
        ]
        answer["services"] = [s for s in services_ if s]
        return answer

    clients.ecs = Override(real, describe_services=draining)  # type: ignore[misc]
    with pytest.raises(ServiceConflict) as caught:
        services.create_or_adopt_services(
            clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
        )
    assert str(caught.value) == (
        "ECS service api-service in cluster workshop-cluster is DRAINING after a delete;"
        " wait until it is INACTIVE, then build again"
    )
    assert real.list_services(cluster=spec.cluster)["serviceArns"] == []


def test_a_missing_cluster_is_resource_not_found(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    registry_ids, definitions = prepare(clients, caller, network_spec)
    spec = network_spec.model_copy(update={"cluster": "no-such-cluster"})
    with pytest.raises(
        ResourceNotFound,
        match=r"DescribeServices in cluster no-such-cluster: ClusterNotFoundException",
    ):
        services.create_or_adopt_services(
            clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
        )


def test_a_cluster_given_as_arn_works(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    registry_ids, definitions = prepare(clients, caller, network_spec)
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/workshop-cluster"
    spec = network_spec.model_copy(update={"cluster": arn})
    state, _rows = services.create_or_adopt_services(
        clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
    )
    assert set(state.actions.values()) == {"created"}
    assert len(clients.ecs.list_services(cluster="workshop-cluster")["serviceArns"]) == 3


def test_services_are_described_in_batches_of_ten(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    template = network_spec.services[0]
    spec = network_spec.model_copy(
        update={
            "services": [
                template.model_copy(update={"name": f"s{i}", "desiredCount": 1}) for i in range(23)
            ]
        }
    )
    registry_ids, definitions = prepare(clients, caller, spec)
    real = clients.ecs

    def describe_at_most_ten(
        **kwargs: Any,
    ) -> Any:  # AWS: "up to 10 services ... in a single operation"
        if len(kwargs["services"]) > 10:
            raise client_error(
                "InvalidParameterException",
                "services can have at most 10 items",
                "DescribeServices",
            )
        return real.describe_services(**kwargs)

    clients.ecs = Override(real, describe_services=describe_at_most_ten)  # type: ignore[misc]
    state, _rows = services.create_or_adopt_services(
        clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 8
    )
    assert len(state.actions) == 23
    assert len(real.list_services(cluster=spec.cluster, maxResults=100)["serviceArns"]) == 23
    checked = services.check_services(clients, spec, registry_ids, state, SERVICES_POLL, 8)
    assert checked.message.startswith("23 of 23 services not ready")


def test_create_service_sends_a_client_token_ecs_accepts(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    real = clients.ecs

    def create_as_ecs_validates(**kwargs: Any) -> Any:
        token = kwargs.get("clientToken", "")
        if (
            len(token) > 36
        ):  # "Up to 36 ASCII characters in the range of 33-126 (inclusive) are allowed."
            raise client_error(
                "InvalidParameterException",
                "clientToken must be at most 36 characters",
                "CreateService",
            )
        return real.create_service(**kwargs)

    clients.ecs = Override(real, create_service=create_as_ecs_validates)  # type: ignore[misc]
    try:
        state, _rows = services.create_or_adopt_services(
            clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
        )
    except AwsRequestFailed as error:
        pytest.fail(str(error))
    assert set(state.actions.values()) == {"created"}


# --- check_services --------------------------------------------------------------------------------


def create_with_running(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    registry_ids: dict[str, str],
    definitions: dict[str, str],
    running: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> ServicesState:
    for service in spec.services:
        monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(running[service.name]))
        services.create_service(
            clients, caller, spec, service, registry_ids[service.name], definitions[service.name]
        )
    return ServicesState(ready=False, poll=Poll.start(SERVICES_POLL))


def test_check_services_is_ready_when_every_task_runs_and_is_registered(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    state = create_with_running(
        clients, caller, spec, registry_ids, definitions, {"web": 2, "api": 2, "db": 1}, monkeypatch
    )
    register_tasks(clients, spec, registry_ids, web=["10.0.1.10", "10.0.2.10"])
    register_tasks(clients, spec, registry_ids, api=["10.0.1.11", "10.0.2.11"], db=["10.0.1.12"])
    checked = services.check_services(clients, spec, registry_ids, state, SERVICES_POLL, 4)
    assert checked.ready is True
    assert checked.message == "all services ready"
    assert checked.poll == Poll(attempt=1, waitSeconds=20, maxAttempts=40)


def test_check_services_counts_only_this_services_tasks_and_names_any_other_instance(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    state = create_with_running(
        clients, caller, spec, registry_ids, definitions, {"web": 2, "api": 2, "db": 1}, monkeypatch
    )
    register_tasks(clients, spec, registry_ids, web=["10.0.1.10", "10.0.2.10"])
    register_tasks(clients, spec, registry_ids, api=["10.0.1.11", "10.0.2.11"])
    # db's registry: a task of another cluster's db-service, and an instance someone registered
    clients.servicediscovery.register_instance(
        ServiceId=registry_ids["db"],
        InstanceId="other-cluster-task",
        Attributes={
            "AWS_INSTANCE_IPV4": "10.0.9.1",
            "ECS_SERVICE_NAME": "db-service",
            "ECS_CLUSTER_NAME": "another-cluster",
        },
    )
    clients.servicediscovery.register_instance(
        ServiceId=registry_ids["db"],
        InstanceId="by-hand",
        Attributes={"AWS_INSTANCE_IPV4": "10.0.9.2"},
    )
    checked = services.check_services(clients, spec, registry_ids, state, SERVICES_POLL, 4)
    assert checked.ready is False  # db's own task is not registered: 2 others do not count
    assert checked.message.endswith(
        "db-service: 1/1 tasks running, 0/1 registered in Cloud Map; also in the registry, not"
        " this service's (not counted): other-cluster-task (10.0.9.1), by-hand (10.0.9.2)"
    )
    register_tasks(clients, spec, registry_ids, db=["10.0.1.12"])
    checked = services.check_services(clients, spec, registry_ids, state, SERVICES_POLL, 4)
    assert checked.ready is True  # the others are tolerated (Verify DNS names them if they answer)


def test_check_services_not_ready_names_each_service_with_running_and_registered_counts(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    state = create_with_running(
        clients, caller, spec, registry_ids, definitions, {"web": 2, "api": 2, "db": 0}, monkeypatch
    )
    register_tasks(clients, spec, registry_ids, web=["10.0.1.10", "10.0.2.10"], api=["10.0.1.11"])
    checked = services.check_services(clients, spec, registry_ids, state, SERVICES_POLL, 4)
    assert checked.ready is False
    assert checked.poll.attempt == 1
    assert checked.message == (
        f"2 of 3 services not ready after 1 checks (about {SERVICES_POLL.budget_seconds()} s allowed): "
        "api-service: 2/2 tasks running, 1/2 registered in Cloud Map; "
        "db-service: 0/1 tasks running (Cloud Map read once they all run)"
    )
    assert checked.readyServices == ["web"]


def cloud_map_reads(clients: Clients) -> list[str]:
    """Every Cloud Map call the client makes from now on: "<operation> <ServiceId>"."""
    calls: list[str] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append(f"{model.name} {params.get('ServiceId', '')}".rstrip())

    clients.servicediscovery.meta.events.register("provide-client-params.servicediscovery", record)
    return calls


def test_check_services_reads_cloud_map_only_for_ecs_ready_services_not_yet_found_ready(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    state = create_with_running(
        clients, caller, spec, registry_ids, definitions, {"web": 2, "api": 2, "db": 0}, monkeypatch
    )
    register_tasks(clients, spec, registry_ids, web=["10.0.1.10", "10.0.2.10"], api=["10.0.1.11"])
    calls = cloud_map_reads(clients)
    first = services.check_services(clients, spec, registry_ids, state, SERVICES_POLL, 4)
    # db runs no task yet: its registry is not read; web and api: ListInstances + health each
    assert sorted(calls) == sorted(
        f"{op} {registry_ids[name]}"
        for name in ("web", "api")
        for op in ("ListInstances", "GetInstancesHealthStatus")
    )
    assert first.readyServices == ["web"]
    register_tasks(clients, spec, registry_ids, api=["10.0.2.11"])
    calls.clear()
    second = services.check_services(clients, spec, registry_ids, first, SERVICES_POLL, 4)
    # web was found ready by the first poll: only api is read (db still runs nothing)
    assert sorted(calls) == [
        f"GetInstancesHealthStatus {registry_ids['api']}",
        f"ListInstances {registry_ids['api']}",
    ]
    assert second.ready is False
    assert second.readyServices == ["web", "api"]
    assert "web-service" not in second.message
    assert "api-service" not in second.message
    assert second.message.endswith(
        "db-service: 0/1 tasks running (Cloud Map read once they all run)"
    )


def test_check_services_reports_a_service_that_does_not_exist(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    spec = network_spec
    registry_ids, _ = prepare(clients, caller, spec)
    state = ServicesState(ready=False, poll=Poll(attempt=4, waitSeconds=30, maxAttempts=40))
    checked = services.check_services(clients, spec, registry_ids, state, SERVICES_POLL, 4)
    assert checked.poll.attempt == 5
    assert "3 of 3 services not ready after 5 checks" in checked.message
    assert "web-service: not found or not ACTIVE" in checked.message


class FakeEcs:
    """DescribeServices answers for many services (with the last ECS event of each)."""

    def __init__(self, running: dict[str, int], event: str) -> None:
        self.running = running
        self.event = event

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        assert len(services) <= 10
        return {
            "services": [
                {
                    "serviceName": n,
                    "status": "ACTIVE",
                    "runningCount": self.running[n],
                    "events": [{"message": self.event}],
                }
                for n in services
            ]
        }


class FakePages:
    def __init__(self, count: int) -> None:
        self.count = count

    def paginate(self, ServiceId: str) -> list[dict[str, Any]]:
        return [{"Instances": [{"Id": f"i{i}"} for i in range(self.count)]}]


class FakeCloudMap:
    def __init__(self, registered: int) -> None:
        self.registered = registered

    def get_paginator(self, name: str) -> FakePages:
        assert name == "list_instances"
        return FakePages(self.registered)

    def get_instances_health_status(self, ServiceId: str, MaxResults: int) -> dict[str, Any]:
        return {"Status": {f"i{i}": "HEALTHY" for i in range(self.registered)}}


def test_check_services_message_names_the_first_twenty_and_counts_the_rest(
    static_spec: dict[str, Any],
) -> None:
    from envbuild_lambda.spec import parse_spec

    static_spec["services"] = [
        {"name": f"s{i:02d}", "image": "nginx", "port": 80, "desiredCount": 1} for i in range(25)
    ]
    spec = parse_spec(static_spec)
    fake = Clients.__new__(Clients)
    fake.__dict__.update(
        ecs=FakeEcs(
            {f"s{i:02d}-service": 0 for i in range(25)}, "service s is unable to place a task"
        ),
        servicediscovery=FakeCloudMap(0),
    )
    state = ServicesState(ready=False, poll=Poll.start(SERVICES_POLL))
    checked = services.check_services(
        fake, spec, {s.name: f"srv-{s.name}" for s in spec.services}, state, SERVICES_POLL, 4
    )
    assert checked.message.startswith("25 of 25 services not ready after 1 checks")
    assert checked.message.count("tasks running") == 20
    assert (
        "s00-service: 0/1 tasks running (Cloud Map read once they all run) (last event: service s is unable to place a task)"
        in checked.message
    )
    assert "s20-service" not in checked.message
    assert checked.message.endswith("; and 5 more")


# --- health and static instances (issue 6) --------------------------------------------------------


def test_check_services_waits_for_unhealthy_instances_naming_them_by_id_and_ip(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    state = create_with_running(
        clients, caller, spec, registry_ids, definitions, {"web": 2, "api": 2, "db": 1}, monkeypatch
    )
    register_tasks(clients, spec, registry_ids, web=["10.0.1.10", "10.0.2.10"])
    register_tasks(clients, spec, registry_ids, api=["10.0.1.11", "10.0.2.11"], db=["10.0.1.12"])
    sd = clients.servicediscovery
    sick = sd.list_instances(ServiceId=registry_ids["db"])["Instances"][0]["Id"]
    sd.update_instance_custom_health_status(
        ServiceId=registry_ids["db"], InstanceId=sick, Status="UNHEALTHY"
    )
    checked = services.check_services(clients, spec, registry_ids, state, SERVICES_POLL, 4)
    assert checked.ready is False
    assert (
        f"db-service: 1/1 tasks running, 1/1 registered in Cloud Map, not HEALTHY: {sick}"
        " (10.0.1.12) UNHEALTHY" in checked.message
    )


def test_static_instances_are_registered_once_and_their_operations_awaited(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    spec = network_spec.model_copy(deep=True)
    spec.services[0].instances = [
        StaticInstance(id="custom-web-instance", ipv4="10.0.3.100", attributes={"v": "1.0"})
    ]
    registry_ids, _ = prepare(clients, caller, spec)
    operations, rows, before = services.converge_static_instances(
        clients, spec, registry_ids, frozenset(), 2
    )
    assert list(operations) == ["RegisterInstance web/custom-web-instance"]
    assert [(r.kind, r.name, r.action) for r in rows] == [
        ("instance", "web/custom-web-instance", "create")
    ]
    assert before == {"web/custom-web-instance": None}  # a rollback deregisters it
    assert services.pending_operations(clients, operations) == {}  # moto: SUCCESS at once
    (instance,) = clients.servicediscovery.list_instances(ServiceId=registry_ids["web"])[
        "Instances"
    ]
    assert instance["Attributes"] == {"AWS_INSTANCE_IPV4": "10.0.3.100", "v": "1.0"}
    # registered with these attributes already: nothing to do on a re-run
    operations, rows, before = services.converge_static_instances(
        clients, spec, registry_ids, frozenset({"web/custom-web-instance"}), 2
    )
    assert operations == {}
    assert [r.action for r in rows] == ["unchanged"]
    assert before == {}

    # removed from the spec: deregistered, as envbuild registered it (the record says so) ...
    spec.services[0].instances = []
    operations, rows, before = services.converge_static_instances(
        clients, spec, registry_ids, frozenset({"web/custom-web-instance"}), 2
    )
    assert list(operations) == ["DeregisterInstance web/custom-web-instance"]
    assert [(r.name, r.action) for r in rows] == [("web/custom-web-instance", "remove")]
    # a rollback registers it again as it was
    assert before == {"web/custom-web-instance": {"AWS_INSTANCE_IPV4": "10.0.3.100", "v": "1.0"}}
    assert clients.servicediscovery.list_instances(ServiceId=registry_ids["web"])["Instances"] == []


def test_a_static_instance_envbuild_did_not_register_is_never_deregistered(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    spec = network_spec
    registry_ids, _ = prepare(clients, caller, spec)
    clients.servicediscovery.register_instance(
        ServiceId=registry_ids["web"],
        InstanceId="someone-elses",
        Attributes={"AWS_INSTANCE_IPV4": "10.0.3.7"},
    )
    operations, rows, before = services.converge_static_instances(
        clients, spec, registry_ids, frozenset({"web/other-recorded"}), 2
    )
    assert (operations, rows, before) == ({}, [], {})
    assert [
        i["Id"]
        for i in clients.servicediscovery.list_instances(ServiceId=registry_ids["web"])["Instances"]
    ] == ["someone-elses"]


def test_a_failed_static_registration_names_the_instance(clients: Clients) -> None:
    class FailedOperation:
        def get_operation(self, OperationId: str) -> dict[str, Any]:
            return {
                "Operation": {
                    "Status": "FAIL",
                    "ErrorCode": "INTERNAL_FAILURE",
                    "ErrorMessage": "x",
                }
            }

    fake = Clients.__new__(Clients)
    fake.__dict__.update(servicediscovery=FailedOperation())
    with pytest.raises(
        CloudMapOperationFailed,
        match=r"RegisterInstance web/custom-web-instance \(Cloud Map operation op-1\) failed:"
        r" INTERNAL_FAILURE x",
    ):
        services.pending_operations(fake, {"RegisterInstance web/custom-web-instance": "op-1"})


# --- the deployment circuit breaker -----------------------------------------------------------------


def test_created_and_updated_services_enable_the_circuit_breaker_with_rollback(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    real = clients.ecs
    sent: list[tuple[str, Any]] = []

    def create(**kwargs: Any) -> Any:
        sent.append(("create", kwargs.get("deploymentConfiguration")))
        return real.create_service(**kwargs)

    def update(**kwargs: Any) -> Any:
        sent.append(("update", kwargs.get("deploymentConfiguration")))
        return real.update_service(**kwargs)

    clients.ecs = Override(real, create_service=create, update_service=update)  # type: ignore[misc]
    services.create_or_adopt_services(
        clients, caller, spec, registry_ids, definitions, SERVICES_POLL, 4
    )
    services.update_service(
        clients,
        spec,
        spec.services[0],
        {"taskDefinition": definitions["web"], "deploymentConfiguration": desired.CIRCUIT_BREAKER},
    )
    breaker = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    # CreateService (steps/desired.py) sends the spec's deployment percents, ECS's defaults here
    created = {**breaker, "minimumHealthyPercent": 100, "maximumPercent": 200}
    assert sent == [("create", created)] * 3 + [("update", breaker)]


def failing(clients: Clients, spec: EnvironmentSpec, change: Any) -> None:
    """DescribeServices answers as ECS would after ``change(web-service description)``."""
    real = clients.ecs

    def describe(**kwargs: Any) -> Any:
        answer = real.describe_services(**kwargs)
        for service in answer["services"]:
            if service["serviceName"] == "web-service":
                change(service)
        return answer

    clients.ecs = Override(real, describe_services=describe)  # type: ignore[misc]


def test_check_services_fails_at_once_when_ecs_rolled_a_failed_deployment_back(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    state = create_with_running(
        clients, caller, spec, registry_ids, definitions, {"web": 2, "api": 2, "db": 1}, monkeypatch
    )
    state = state.model_copy(update={"actions": {"web-service": "updated"}})
    old = definitions["web"]
    new = old.rsplit(":", 1)[0] + ":2"

    def rolled_back(service: dict[str, Any]) -> None:
        primary = dict(service["deployments"][0])
        service["deployments"] = [
            {**primary, "rolloutState": "IN_PROGRESS"},
            {
                **primary,
                "status": "ACTIVE",
                "taskDefinition": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{new}",
                "rolloutState": "FAILED",
                "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
                "failedTasks": 3,
            },
        ]
        service["events"] = [
            {"message": "(service web-service) rolling back to " + old},
            {"message": "(service web-service) failed to launch a task with (error Boom)."},
        ]

    failing(clients, spec, rolled_back)
    with pytest.raises(DeploymentFailed) as raised:
        services.check_services(
            clients, spec, registry_ids, state, SERVICES_POLL, 4, {**definitions, "web": new}
        )
    assert str(raised.value) == (
        f"1 of 3 services failed to deploy: web-service: deployment of {new} FAILED (ECS"
        " deployment circuit breaker: tasks failed to start.), 3 failed tasks, last error:"
        " (service web-service) failed to launch a task with (error Boom)., ECS rolled"
        f" web-service back to {old}"
    )


def test_check_services_fails_when_the_rollback_is_already_done(
    clients: Clients, caller: Caller, network_spec: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FAILED deployment is gone once ECS's rollback completed: the service runs another
    revision than the one this build set."""
    spec = network_spec
    registry_ids, definitions = prepare(clients, caller, spec)
    state = create_with_running(
        clients, caller, spec, registry_ids, definitions, {"web": 2, "api": 2, "db": 1}, monkeypatch
    )
    new = definitions["web"].rsplit(":", 1)[0] + ":2"
    wanted = {**definitions, "web": new}
    updated = state.model_copy(update={"actions": {"web-service": "updated"}})
    with pytest.raises(DeploymentFailed, match=f"web-service: the deployment of {new} is gone"):
        services.check_services(clients, spec, registry_ids, updated, SERVICES_POLL, 4, wanted)
    # an adopted service is used as it is, whatever it runs
    adopted = state.model_copy(update={"actions": {"web-service": "adopted"}})
    checked = services.check_services(
        clients, spec, registry_ids, adopted, SERVICES_POLL, 4, wanted
    )
    assert checked.ready is False
