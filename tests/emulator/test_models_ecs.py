"""ECS services that run tasks, register them in Cloud Map and publish A records."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from envbuild_emulator.models import World

from .conftest import Clients, Network

CLUSTER = "envbuild"


def _register_revision(aws: Clients, image: str) -> None:
    aws.ecs.register_task_definition(
        family="dev-web",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "web", "image": image, "essential": True}],
    )


@pytest.fixture
def registry(world: World, aws: Clients, network: Network, make_namespace: Any) -> dict[str, Any]:
    namespace_id = make_namespace("workshop.local", network.vpc_id)
    service = aws.sd.create_service(
        Name="web",
        NamespaceId=namespace_id,
        DnsConfig={"NamespaceId": namespace_id, "DnsRecords": [{"Type": "A", "TTL": 60}]},
        HealthCheckCustomConfig={"FailureThreshold": 1},
    )["Service"]
    namespace = aws.sd.get_namespace(Id=namespace_id)["Namespace"]
    aws.ecs.create_cluster(clusterName=CLUSTER)
    _register_revision(aws, "nginx:latest")
    return {
        "service": service,
        "zone_id": namespace["Properties"]["DnsProperties"]["HostedZoneId"],
    }


def _create_service(
    aws: Clients, network: Network, registry: dict[str, Any], count: int, **extra: Any
) -> None:
    aws.ecs.create_service(
        cluster=CLUSTER,
        serviceName="web-service",
        taskDefinition="dev-web",
        desiredCount=count,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(network.subnets),
                "securityGroups": [network.security_group],
                "assignPublicIp": "DISABLED",
            }
        },
        serviceRegistries=[{"registryArn": registry["service"]["Arn"]}],
        **extra,
    )


def _service(aws: Clients) -> dict[str, Any]:
    return dict(aws.ecs.describe_services(cluster=CLUSTER, services=["web-service"])["services"][0])


def _tasks(aws: Clients, **filters: str) -> list[dict[str, Any]]:
    arns = aws.ecs.list_tasks(cluster=CLUSTER, serviceName="web-service", **filters)["taskArns"]
    if not arns:
        return []
    return list(aws.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"])


def _ip(task: dict[str, Any]) -> str:
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    return str(details["privateIPv4Address"])


def _a_records(aws: Clients, zone_id: str) -> dict[str, str]:
    sets = aws.route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {
        s["SetIdentifier"]: s["ResourceRecords"][0]["Value"]
        for s in sets
        if s["Type"] == "A" and s["Name"] == "web.workshop.local."
    }


def test_service_tasks_start_register_and_publish_records(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    _create_service(aws, network, registry, count=3)
    service = _service(aws)
    assert (service["runningCount"], service["pendingCount"]) == (0, 3)

    tasks = _tasks(aws, desiredStatus="RUNNING")
    assert len(tasks) == 3
    assert {t["lastStatus"] for t in tasks} == {"PROVISIONING"}
    for task in tasks:
        assert task["group"] == "service:web-service"
        assert task["startedBy"].startswith("ecs-svc/")
        assert task["launchType"] == "FARGATE"
        subnet_id = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}["subnetId"]
        cidr, zone = network.subnets[subnet_id]
        assert ipaddress.ip_address(_ip(task)) in ipaddress.ip_network(cidr)
        assert task["availabilityZone"] == zone
    # round-robin over the subnets, unique addresses
    assert len({_ip(t) for t in tasks}) == 3
    subnets_used = {
        d["value"] for t in tasks for d in t["attachments"][0]["details"] if d["name"] == "subnetId"
    }
    assert subnets_used == set(network.subnets)

    world.clock.advance(world.latencies.task_start_seconds)
    assert {t["lastStatus"] for t in _tasks(aws)} == {"RUNNING"}
    service = _service(aws)
    assert (service["runningCount"], service["pendingCount"]) == (3, 0)
    assert aws.sd.list_instances(ServiceId=registry["service"]["Id"])["Instances"] == []

    world.clock.advance(world.latencies.registration_seconds)
    instances = aws.sd.list_instances(ServiceId=registry["service"]["Id"])["Instances"]
    by_task = {t["taskArn"].rsplit("/", 1)[-1]: t for t in _tasks(aws)}
    assert {i["Id"] for i in instances} == set(by_task)
    for instance in instances:
        task = by_task[instance["Id"]]
        attributes = instance["Attributes"]
        assert attributes["AWS_INSTANCE_IPV4"] == _ip(task)
        assert attributes["AVAILABILITY_ZONE"] == task["availabilityZone"]
        assert attributes["ECS_SERVICE_NAME"] == "web-service"
        assert attributes["ECS_CLUSTER_NAME"] == CLUSTER
        assert attributes["ECS_TASK_DEFINITION_FAMILY"] == "dev-web"
    health = aws.sd.get_instances_health_status(ServiceId=registry["service"]["Id"])["Status"]
    assert health == dict.fromkeys(by_task, "HEALTHY")
    discovered = aws.sd.discover_instances(
        NamespaceName="workshop.local", ServiceName="web", HealthStatus="HEALTHY"
    )["Instances"]
    assert {i["InstanceId"] for i in discovered} == set(by_task)
    assert _a_records(aws, registry["zone_id"]) == {k: _ip(t) for k, t in by_task.items()}
    assert any("steady state" in e["message"] for e in _service(aws)["events"])


def test_scaling_down_deregisters_and_stops_tasks(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    _create_service(aws, network, registry, count=2)
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    assert len(_a_records(aws, registry["zone_id"])) == 2

    aws.ecs.update_service(cluster=CLUSTER, service="web-service", desiredCount=1)
    service = _service(aws)
    assert (service["desiredCount"], service["runningCount"]) == (1, 1)
    remaining = _tasks(aws)
    assert len(remaining) == 1
    remaining_id = remaining[0]["taskArn"].rsplit("/", 1)[-1]
    instances = aws.sd.list_instances(ServiceId=registry["service"]["Id"])["Instances"]
    assert [i["Id"] for i in instances] == [remaining_id]
    assert list(_a_records(aws, registry["zone_id"])) == [remaining_id]

    stopping = _tasks(aws, desiredStatus="STOPPED")
    assert len(stopping) == 1
    assert stopping[0]["lastStatus"] == "DEACTIVATING"
    assert stopping[0]["stopCode"] == "ServiceSchedulerInitiated"
    world.clock.advance(world.latencies.task_stop_seconds)
    assert _tasks(aws, desiredStatus="STOPPED")[0]["lastStatus"] == "STOPPED"

    # scale up again: a new task is started and registered
    aws.ecs.update_service(cluster=CLUSTER, service="web-service", desiredCount=2)
    assert _service(aws)["pendingCount"] == 1
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    assert len(_a_records(aws, registry["zone_id"])) == 2


def test_delete_service_stops_and_deregisters_everything(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    _create_service(aws, network, registry, count=2)
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    aws.ecs.delete_service(cluster=CLUSTER, service="web-service", force=True)
    assert aws.sd.list_instances(ServiceId=registry["service"]["Id"])["Instances"] == []
    assert _a_records(aws, registry["zone_id"]) == {}
    assert aws.ecs.list_tasks(cluster=CLUSTER)["taskArns"] == []
    # the registry can now be deleted
    aws.sd.delete_service(Id=registry["service"]["Id"])


def test_a_deleted_service_is_draining_until_its_tasks_have_stopped(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    _create_service(aws, network, registry, count=2)
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    aws.ecs.delete_service(cluster=CLUSTER, service="web-service", force=True)
    assert _service(aws)["status"] == "DRAINING"
    world.clock.advance(world.latencies.task_stop_seconds)
    assert _service(aws)["status"] == "INACTIVE"


def test_stopped_task_is_replaced(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    _create_service(aws, network, registry, count=1)
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    [task] = _tasks(aws)
    aws.ecs.stop_task(cluster=CLUSTER, task=task["taskArn"], reason="testing")
    assert _a_records(aws, registry["zone_id"]) == {}
    [replacement] = _tasks(aws)
    assert replacement["taskArn"] != task["taskArn"]
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    assert list(_a_records(aws, registry["zone_id"])) == [replacement["taskArn"].rsplit("/", 1)[-1]]


def test_tasks_that_fail_to_start_are_never_registered(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    reason = "CannotPullContainerError: pull access denied for nginx:nope"
    world.faults.tasks_fail_to_start("web-service", reason=reason)
    _create_service(aws, network, registry, count=2)
    world.clock.advance(world.latencies.task_start_seconds)

    stopped = _tasks(aws, desiredStatus="STOPPED")
    assert len(stopped) == 2
    for task in stopped:
        assert task["lastStatus"] == "STOPPED"
        assert task["stoppedReason"] == reason
        assert task["stopCode"] == "TaskFailedToStart"
    service = _service(aws)
    assert service["runningCount"] == 0
    assert any(reason in event["message"] for event in service["events"])

    world.clock.advance(600)  # the scheduler keeps retrying, the tasks keep failing
    service = _service(aws)
    assert service["runningCount"] < service["desiredCount"]
    assert aws.sd.list_instances(ServiceId=registry["service"]["Id"])["Instances"] == []
    assert _a_records(aws, registry["zone_id"]) == {}

    # once the image is fixed the next attempt succeeds
    world.faults.clear_tasks_fail_to_start("web-service")
    world.clock.advance(900 + world.latencies.task_start_seconds)
    world.clock.advance(world.latencies.registration_seconds)
    assert _service(aws)["runningCount"] == 2
    assert len(_a_records(aws, registry["zone_id"])) == 2


def test_fault_by_task_definition_family(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    world.faults.tasks_fail_to_start("dev-web")
    _create_service(aws, network, registry, count=1)
    world.clock.advance(world.latencies.task_start_seconds)
    [task] = _tasks(aws, desiredStatus="STOPPED")
    assert task["stoppedReason"].startswith("CannotPullContainerError")


def test_services_without_fargate_awsvpc_are_left_to_moto(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    aws.ecs.register_task_definition(
        family="ec2-app", containerDefinitions=[{"name": "a", "image": "x", "memory": 128}]
    )
    aws.ecs.create_service(
        cluster=CLUSTER, serviceName="ec2-service", taskDefinition="ec2-app", desiredCount=1
    )
    world.clock.advance(120)
    service = aws.ecs.describe_services(cluster=CLUSTER, services=["ec2-service"])["services"][0]
    assert service["runningCount"] == 0


def test_a_new_task_definition_rolls_out_as_a_new_deployment(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    """UpdateService to another revision: new tasks start next to the old ones; once they run
    and are registered the old ones are deregistered and stopped; then one COMPLETED deployment."""
    _create_service(aws, network, registry, count=2)
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    old_tasks = {t["taskArn"] for t in _tasks(aws)}
    first = _service(aws)["deployments"]
    assert [(d["status"], d["rolloutState"]) for d in first] == [("PRIMARY", "COMPLETED")]
    _register_revision(aws, "nginx:1.27")

    aws.ecs.update_service(cluster=CLUSTER, service="web-service", taskDefinition="dev-web:2")

    service = _service(aws)
    assert service["taskDefinition"].endswith("task-definition/dev-web:2")  # the ARN, as AWS
    assert [
        (d["status"], d["taskDefinition"].rsplit("/", 1)[-1]) for d in service["deployments"]
    ] == [
        ("PRIMARY", "dev-web:2"),
        ("ACTIVE", "dev-web:1"),
    ]
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert len(_tasks(aws, desiredStatus="RUNNING")) == 4  # maximumPercent 200

    world.clock.advance(world.latencies.task_start_seconds)
    assert len(_tasks(aws, desiredStatus="RUNNING")) == 4  # new ones not yet registered
    world.clock.advance(world.latencies.registration_seconds)
    running = _tasks(aws, desiredStatus="RUNNING")
    assert {t["taskDefinitionArn"].rsplit("/", 1)[-1] for t in running} == {"dev-web:2"}
    assert not {t["taskArn"] for t in running} & old_tasks
    instances = aws.sd.list_instances(ServiceId=registry["service"]["Id"])["Instances"]
    assert {i["Id"] for i in instances} == {t["taskArn"].rsplit("/", 1)[-1] for t in running}
    assert len(_service(aws)["deployments"]) == 2  # old tasks still stopping

    world.clock.advance(world.latencies.task_stop_seconds)
    service = _service(aws)
    assert [(d["status"], d["rolloutState"]) for d in service["deployments"]] == [
        ("PRIMARY", "COMPLETED")
    ]
    assert (service["runningCount"], service["desiredCount"]) == (2, 2)


def test_an_update_of_the_desired_count_only_keeps_the_deployment(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    _create_service(aws, network, registry, count=1)
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    deployment = _service(aws)["deployments"][0]["id"]

    aws.ecs.update_service(cluster=CLUSTER, service="web-service", desiredCount=3)
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)

    service = _service(aws)
    assert [d["id"] for d in service["deployments"]] == [deployment]
    assert (service["runningCount"], service["deployments"][0]["rolloutState"]) == (3, "COMPLETED")


# ---------------------------------------------------------------- deployment circuit breaker
BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}


def _create_with_breaker(
    aws: Clients, network: Network, registry: dict[str, Any], count: int, **configuration: Any
) -> None:
    _create_service(aws, network, registry, count, deploymentConfiguration=configuration or BREAKER)


def _advance_until(world: World, aws: Clients, done: Any, limit: float = 3600) -> float:
    """Advance the clock in 1 s steps until ``done(service)``; returns the seconds taken."""
    waited = 0.0
    while not done(_service(aws)):
        assert waited < limit, _service(aws)["deployments"]
        world.clock.advance(1)
        waited += 1
    return waited


def _failed(service: dict[str, Any]) -> bool:
    return any(d["rolloutState"] == "FAILED" for d in service["deployments"])


def test_describe_services_returns_the_deployment_configuration(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    configuration = {**BREAKER, "maximumPercent": 200, "minimumHealthyPercent": 100}
    _create_with_breaker(aws, network, registry, 1, **configuration)
    assert _service(aws)["deploymentConfiguration"] == configuration

    update = {"deploymentCircuitBreaker": {"enable": True, "rollback": False}}
    aws.ecs.update_service(cluster=CLUSTER, service="web-service", deploymentConfiguration=update)
    assert (
        _service(aws)["deploymentConfiguration"]["deploymentCircuitBreaker"]
        == (update["deploymentCircuitBreaker"])
    )
    # without deploymentConfiguration UpdateService keeps it
    aws.ecs.update_service(cluster=CLUSTER, service="web-service", desiredCount=2)
    assert (
        _service(aws)["deploymentConfiguration"]["deploymentCircuitBreaker"]
        == (update["deploymentCircuitBreaker"])
    )


@pytest.mark.parametrize(("desired", "threshold"), [(1, 3), (2, 3), (7, 4), (10, 5)])
def test_the_breaker_trips_at_the_failed_task_threshold_of_a_new_service(
    world: World,
    aws: Clients,
    network: Network,
    registry: dict[str, Any],
    desired: int,
    threshold: int,
) -> None:
    """A new service has no previous deployment: FAILED, and no more launches."""
    world.faults.tasks_fail_to_start("web-service", reason="CannotPullContainerError: denied")
    _create_with_breaker(aws, network, registry, desired)

    _advance_until(world, aws, _failed)

    service = _service(aws)
    [deployment] = service["deployments"]
    assert deployment["rolloutState"] == "FAILED"
    assert deployment["rolloutStateReason"] == (
        "ECS deployment circuit breaker: tasks failed to start."
    )
    # the threshold is reached by the batch of launches in which it falls
    assert threshold <= deployment["failedTasks"] < threshold + desired
    assert any(
        "deployment failed: tasks failed to start" in e["message"] for e in service["events"]
    )
    failed = deployment["failedTasks"]

    world.clock.advance(3600)  # no more launches for a FAILED deployment
    service = _service(aws)
    assert service["deployments"][0]["failedTasks"] == failed
    assert len(_tasks(aws, desiredStatus="STOPPED")) == failed
    assert _tasks(aws, desiredStatus="RUNNING") == []
    assert service["taskDefinition"].endswith("dev-web:1")


def test_without_the_breaker_the_scheduler_keeps_retrying(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    world.faults.tasks_fail_to_start("web-service")
    _create_with_breaker(
        aws, network, registry, 1, deploymentCircuitBreaker={"enable": False, "rollback": False}
    )
    world.clock.advance(3600)
    service = _service(aws)
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert service["deployments"][0]["failedTasks"] > 3


def test_a_failed_update_rolls_back_to_the_revision_that_last_completed(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    _create_with_breaker(aws, network, registry, 2)
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    assert _service(aws)["deployments"][0]["rolloutState"] == "COMPLETED"
    _register_revision(aws, "nginx:nope")
    world.faults.tasks_fail_to_start("dev-web:2")

    aws.ecs.update_service(cluster=CLUSTER, service="web-service", taskDefinition="dev-web:2")
    _advance_until(world, aws, _failed)

    service = _service(aws)
    assert service["taskDefinition"].endswith("task-definition/dev-web:1")  # back at once
    [rollback, failed, original] = service["deployments"]
    assert (rollback["status"], rollback["rolloutState"]) == ("PRIMARY", "IN_PROGRESS")
    assert rollback["taskDefinition"].endswith("dev-web:1")
    assert (failed["status"], failed["rolloutState"]) == ("ACTIVE", "FAILED")
    assert failed["taskDefinition"].endswith("dev-web:2")
    assert failed["failedTasks"] >= 3
    assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert original["status"] == "ACTIVE"  # its tasks still run until the rollback's are up
    assert any("rolling back to dev-web:1" in e["message"] for e in service["events"])

    # The rollback completes like any rolling deployment: one COMPLETED deployment of dev-web:1.
    _advance_until(world, aws, lambda s: len(s["deployments"]) == 1)
    service = _service(aws)
    assert [(d["status"], d["rolloutState"]) for d in service["deployments"]] == [
        ("PRIMARY", "COMPLETED")
    ]
    assert service["deployments"][0]["id"] == rollback["id"]
    assert (service["runningCount"], service["desiredCount"]) == (2, 2)
    running = _tasks(aws, desiredStatus="RUNNING")
    assert {t["taskDefinitionArn"].rsplit("/", 1)[-1] for t in running} == {"dev-web:1"}
    instances = aws.sd.list_instances(ServiceId=registry["service"]["Id"])["Instances"]
    assert {i["Attributes"]["AWS_INSTANCE_IPV4"] for i in instances} == {_ip(t) for t in running}


def test_a_failed_update_without_rollback_stays_failed_on_the_new_revision(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    _create_with_breaker(
        aws, network, registry, 1, deploymentCircuitBreaker={"enable": True, "rollback": False}
    )
    world.clock.advance(world.latencies.task_start_seconds + world.latencies.registration_seconds)
    _register_revision(aws, "nginx:nope")
    world.faults.tasks_fail_to_start("dev-web:2")

    aws.ecs.update_service(cluster=CLUSTER, service="web-service", taskDefinition="dev-web:2")
    _advance_until(world, aws, _failed)
    world.clock.advance(3600)

    service = _service(aws)
    assert service["taskDefinition"].endswith("dev-web:2")
    assert [(d["status"], d["rolloutState"]) for d in service["deployments"]] == [
        ("PRIMARY", "FAILED"),
        ("ACTIVE", "COMPLETED"),  # the old tasks keep running
    ]
    running = _tasks(aws, desiredStatus="RUNNING")
    assert [t["taskDefinitionArn"].rsplit("/", 1)[-1] for t in running] == ["dev-web:1"]


def test_a_subnet_without_a_free_address_is_a_service_event_and_placement_is_retried(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    """Issue 15 item 8: the task cannot get an address for its ENI. AWS reports it in the
    service's events (DescribeServices), not as an error of CreateService; the scheduler tries
    again, and starts the task once an address is free."""
    subnet = aws.ec2.create_subnet(VpcId=network.vpc_id, CidrBlock="10.0.9.0/28")["Subnet"]
    assert subnet["AvailableIpAddressCount"] == 11  # 16 - the 5 AWS reserves
    enis = [
        aws.ec2.create_network_interface(SubnetId=subnet["SubnetId"])["NetworkInterface"]
        for _ in range(11)
    ]
    full = aws.ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]
    assert full["AvailableIpAddressCount"] == 0

    aws.ecs.create_service(
        cluster=CLUSTER,
        serviceName="web-service",
        taskDefinition="dev-web",
        desiredCount=1,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [subnet["SubnetId"]],
                "securityGroups": [network.security_group],
            }
        },
        serviceRegistries=[{"registryArn": registry["service"]["Arn"]}],
    )

    service = _service(aws)
    assert (service["runningCount"], service["pendingCount"]) == (0, 0)
    assert _tasks(aws) == []
    assert service["events"][0]["message"] == (
        f"(service web-service) was unable to place a task. Reason: no free IPv4 address in"
        f" subnets {subnet['SubnetId']} for the task's network interface."
    )
    aws.ec2.delete_network_interface(NetworkInterfaceId=enis[0]["NetworkInterfaceId"])
    world.clock.advance(60 + world.latencies.task_start_seconds)
    [task] = _tasks(aws)
    assert task["lastStatus"] == "RUNNING"
    assert ipaddress.ip_address(_ip(task)) in ipaddress.ip_network("10.0.9.0/28")


def test_a_family_without_revision_describes_its_latest_active_revision(
    world: World, aws: Clients
) -> None:
    """DescribeTaskDefinition of a family: "the latest ACTIVE revision is used" (moto: latest)."""
    for image in ("a", "b"):
        aws.ecs.register_task_definition(
            family="web", containerDefinitions=[{"name": "web", "image": image, "memory": 512}]
        )
    aws.ecs.deregister_task_definition(taskDefinition="web:2")
    described = aws.ecs.describe_task_definition(taskDefinition="web")["taskDefinition"]
    assert (described["revision"], described["status"]) == (1, "ACTIVE")
    assert (
        aws.ecs.describe_task_definition(taskDefinition="web:2")["taskDefinition"]["status"]
        == "INACTIVE"
    )


def test_force_new_deployment_and_a_network_change_start_a_new_deployment(
    world: World, aws: Clients, network: Network, registry: dict[str, Any]
) -> None:
    _create_with_breaker(aws, network, registry, 1)
    _advance_until(world, aws, lambda s: s["deployments"][0]["rolloutState"] == "COMPLETED")
    first = _service(aws)["deployments"][0]["id"]
    aws.ecs.update_service(cluster=CLUSTER, service="web-service", forceNewDeployment=True)
    deployments = _service(aws)["deployments"]
    assert [d["status"] for d in deployments] == ["PRIMARY", "ACTIVE"]
    assert deployments[1]["id"] == first
    assert deployments[0]["taskDefinition"] == deployments[1]["taskDefinition"]
    _advance_until(world, aws, lambda s: len(s["deployments"]) == 1)
    # a network change too (ECS moves the tasks: new ENIs)
    vpc = _service(aws)["networkConfiguration"]
    aws.ecs.update_service(cluster=CLUSTER, service="web-service", networkConfiguration=vpc)
    assert [d["status"] for d in _service(aws)["deployments"]] == ["PRIMARY", "ACTIVE"]
