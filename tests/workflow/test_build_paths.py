"""One test per path of the build state machine, run on the real ASL in the emulator.

Each asserts on the execution (status, Error, Cause, history) and on what exists in the emulated
account afterwards, as a user would see it through the AWS APIs.
"""

from __future__ import annotations

import json
import threading
import warnings
from typing import Any

import pytest

from tests.workflow.helpers import (
    account_snapshot,
    entered,
    existing_namespace,
    registry_id,
    run_build,
    states_entered,
    task_ips,
)


def test_happy_path_builds_the_workshop_environment(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    described, _history = run_build(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    summary = json.loads(described["output"])
    answers = {s["dnsName"]: s["ips"] for s in summary["services"]}
    assert sorted(answers) == ["api.workshop.local", "db.workshop.local", "web.workshop.local"]
    assert [
        len(answers[n]) for n in ("web.workshop.local", "api.workshop.local", "db.workshop.local")
    ] == [2, 2, 1]

    cluster = emulator.prerequisites["CLUSTER_NAME"]
    for service in summary["services"]:  # each name answers with exactly its running tasks' IPs
        assert set(service["ips"]) == task_ips(emulator, cluster, f"{service['name']}-service")

    sd = emulator.client("servicediscovery")
    namespace = sd.get_namespace(Id=summary["namespace"]["id"])["Namespace"]
    assert namespace["Name"] == "workshop.local"
    assert namespace["Type"] == "DNS_PRIVATE"
    tags = {
        t["Key"]: t["Value"]
        for t in sd.list_tags_for_resource(ResourceARN=namespace["Arn"])["Tags"]
    }
    assert tags == {
        "envbuild:environment": "workshop",
        "envbuild:managed": "true",
        "envbuild:build": described["executionArn"],  # the ledger a rollback removes exactly
    }
    zone = emulator.client("route53").get_hosted_zone(Id=summary["namespace"]["hostedZoneId"])
    assert emulator.prerequisites["VPC_ID"] in [v["VPCId"] for v in zone["VPCs"]]

    ecs = emulator.client("ecs")
    described_services = ecs.describe_services(
        cluster=cluster, services=["web-service", "api-service", "db-service"]
    )["services"]
    assert {
        s["serviceName"]: (s["status"], s["desiredCount"], s["runningCount"])
        for s in described_services
    } == {
        "web-service": ("ACTIVE", 2, 2),
        "api-service": ("ACTIVE", 2, 2),
        "db-service": ("ACTIVE", 1, 1),
    }
    registry_ids = {registry_id(summary, s) for s in summary["services"]}
    assert {
        s["serviceRegistries"][0]["registryArn"].rsplit("/", 1)[1] for s in described_services
    } == registry_ids
    # the summary names no ECS service: each is <name>-service (the env file's ECS_SERVICE_ARN)
    assert {f"{s['name']}-service" for s in summary["services"]} == {
        s["serviceName"] for s in described_services
    }
    for service in described_services:
        assert service["launchType"] == "FARGATE"
        network = service["networkConfiguration"]["awsvpcConfiguration"]
        assert network["assignPublicIp"] == "DISABLED"
        assert sorted(network["subnets"]) == sorted(
            [emulator.prerequisites["PRIVATE_SUBNET_1"], emulator.prerequisites["PRIVATE_SUBNET_2"]]
        )

    web = ecs.describe_task_definition(taskDefinition="workshop_web")["taskDefinition"]
    container = web["containerDefinitions"][0]
    assert container["image"] == "nginx:latest"
    assert container["environment"] == [
        {"name": "API_ENDPOINT", "value": "http://api.workshop.local"}
    ]
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/workshop_web"
    assert (web["cpu"], web["memory"], web["networkMode"]) == ("256", "512", "awsvpc")
    assert web["executionRoleArn"].endswith(":role/ecsTaskExecutionRole")
    groups = {g["logGroupName"] for g in emulator.client("logs").describe_log_groups()["logGroups"]}
    assert {"/ecs/workshop_web", "/ecs/workshop_api", "/ecs/workshop_db"} <= groups

    for name in ("web", "api", "db"):
        registry = next(s for s in summary["services"] if s["name"] == name)
        instances = sd.list_instances(ServiceId=registry_id(summary, registry))["Instances"]
        assert {i["Attributes"]["AWS_INSTANCE_IPV4"] for i in instances} == set(registry["ips"])
        assert {i["Attributes"]["ECS_SERVICE_NAME"] for i in instances} == {f"{name}-service"}


def test_namespace_poll_loop_waits_the_usual_duration_then_checks_often(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    checks = entered(history, "Check Namespace Operation")
    waits = [
        json.loads(e["stateEnteredEventDetails"]["input"])["namespace"]["poll"]["waitSeconds"]
        for e in entered(history, "Wait For Namespace")
    ]
    # The first wait is most of the usual minute, then checks every 2 s for the 20 s in which the
    # operation most likely ends (settings.FINE_POLL_SECONDS / FINE_WINDOW_SECONDS), then every
    # 5 s (template default): the operation that ends at 60 s is seen at 60 s.
    assert waits == [50, 2, 2, 2, 2, 2]
    assert len(checks) == 6
    assert sum(waits) >= 60  # it did not finish before the modelled minute had passed


def test_namespace_operation_fail_ends_with_cloud_map_error(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    emulator.world.faults.fail_namespace_operation(
        "workshop.local",
        error_code="CANNOT_CREATE_HOSTED_ZONE",
        message="The hosted zone could not be created",
    )
    before = account_snapshot(emulator)

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "NamespaceOperationFailed"
    cause = json.loads(described["cause"])["errorMessage"]
    assert "CANNOT_CREATE_HOSTED_ZONE" in cause
    assert "The hosted zone could not be created" in cause
    assert "Create Services" not in states_entered(history)
    after = account_snapshot(emulator)
    assert after["namespaces"] == before["namespaces"]
    assert after["ecs_services"] == []
    assert after["registries"] == []


def test_throttling_is_retried_then_succeeds(
    emulator: Any, workshop_spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.retries import standard
    from moto.core.exceptions import JsonRESTError
    from moto.ecs.models import EC2ContainerServiceBackend

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    original = EC2ContainerServiceBackend.register_task_definition
    lock, calls = threading.Lock(), {"n": 0}

    def throttled(self: Any, family: str, *args: Any, **kwargs: Any) -> Any:
        # The web family's first 6 calls are throttled: more than the SDK's own 5 attempts, so
        # the first invocation fails with AwsThrottled and the state machine's Retry runs it again.
        with lock:
            calls["n"] += family == "workshop_web"
            throttle = family == "workshop_web" and calls["n"] <= 6
        if throttle:
            raise JsonRESTError("ThrottlingException", "Rate exceeded")
        return original(self, family, *args, **kwargs)

    monkeypatch.setattr(EC2ContainerServiceBackend, "register_task_definition", throttled)

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    failures = [
        e["lambdaFunctionFailedEventDetails"]["error"]
        for e in history
        if e["type"] == "LambdaFunctionFailed"
    ]
    assert "AwsThrottled" in failures
    families = emulator.client("ecs").list_task_definition_families()["families"]
    assert sorted(families) == ["workshop_api", "workshop_db", "workshop_web"]
    assert len(emulator.client("ecs").list_task_definitions()["taskDefinitionArns"]) == 3


def test_invalid_spec_is_rejected_before_anything_is_created(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    bad = json.loads(json.dumps(workshop_spec))
    bad["services"][0]["desiredcount"] = 2
    bad["services"][1]["port"] = 70000
    bad["services"][2]["memory"] = "4096"
    bad["namespace"]["name"] = "Workshop_Local"
    before = account_snapshot(emulator)

    described, history = run_build(emulator, bad)

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidSpec"
    cause = json.loads(described["cause"])["errorMessage"]
    for field in (
        "services[0].desiredcount",
        "did you mean 'desiredCount'",
        "services[1].port",
        "namespace.name",
        "services[2]",
    ):
        assert field in cause
    assert states_entered(history) == ["Validate Spec", "Spec Rejected", "Build Failed"]
    assert account_snapshot(emulator) == before


NOT_OBJECTS = [
    ([1, 2], "got an array ([1, 2])"),
    ("hello", 'got a string ("hello")'),
    (42, "got a number (42)"),
    # The emulator's Lambda (moto's) hands a null state input to the function as {}: every
    # required field is then named as missing.
    (None, "environment: required field is missing"),
]


def assert_rejected_as_not_an_object(emulator: Any, arn: str, named: str) -> None:
    described = emulator.wait(arn)

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidSpec"  # was States.Runtime: Catch ResultPath $.error
    cause = json.loads(described["cause"])["errorMessage"]
    if "missing" not in named:
        assert cause == f"the spec must be a JSON object, {named}"
    assert named in cause
    assert states_entered(emulator.history(arn)) == [
        "Validate Spec",
        "Spec Rejected",
        "Build Failed",
    ]


@pytest.mark.parametrize(("document", "named"), NOT_OBJECTS)
def test_a_build_input_that_is_not_a_json_object_ends_invalid_spec_naming_it(
    emulator: Any, document: object, named: str
) -> None:
    before = account_snapshot(emulator)
    arn = emulator.client("stepfunctions").start_execution(
        stateMachineArn=emulator.state_machine_arn, name="not-an-object", input=json.dumps(document)
    )["executionArn"]

    assert_rejected_as_not_an_object(emulator, arn, named)
    assert account_snapshot(emulator) == before


def test_a_build_event_whose_detail_is_not_a_json_object_ends_invalid_spec(emulator: Any) -> None:
    before = account_snapshot(emulator)
    entry = {
        "Source": "envbuild",
        "DetailType": "Environment Build Requested",
        "Detail": json.dumps([1, 2]),
    }
    with warnings.catch_warnings():  # moto: "EventDetail should be of type dict"
        warnings.simplefilter("ignore", UserWarning)
        emulator.client("events").put_events(Entries=[entry])
    sfn = emulator.client("stepfunctions")
    [execution] = sfn.list_executions(stateMachineArn=emulator.state_machine_arn)["executions"]

    assert_rejected_as_not_an_object(emulator, execution["executionArn"], "got an array ([1, 2])")
    assert account_snapshot(emulator) == before


def test_a_spec_too_large_for_step_functions_states_is_rejected_before_anything_is_created(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    big = json.loads(json.dumps(workshop_spec))
    template = big["services"][0]
    big["services"] = [{**template, "name": f"web{i:03d}", "desiredCount": 40} for i in range(500)]
    before = account_snapshot(emulator)

    described, history = run_build(emulator, big)

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidSpec"
    cause = json.loads(described["cause"])["errorMessage"]
    assert cause.startswith("services: 500 service(s) make the build's largest state")
    assert "over the 224 KiB envbuild allows" in cause
    assert states_entered(history) == ["Validate Spec", "Spec Rejected", "Build Failed"]
    assert account_snapshot(emulator) == before


def max_attempts(history: list[dict[str, Any]]) -> int:
    """The Check Services poll budget (ServicesPollMaxAttempts), as the execution carries it."""
    return int(
        json.loads(entered(history, "Wait For Services")[0]["stateEnteredEventDetails"]["input"])[
            "deployment"
        ]["poll"]["maxAttempts"]
    )


def test_new_services_whose_tasks_never_start_fail_fast_with_deployment_failed(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """ECS's circuit breaker marks the new service's deployment FAILED (no earlier revision to
    roll back to): the build stops polling at once instead of waiting for the whole budget."""
    before = account_snapshot(emulator)
    emulator.world.faults.tasks_fail_to_start(
        "web-service", reason="CannotPullContainerError: pull access denied"
    )

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "DeploymentFailed"
    cause = json.loads(described["cause"])["errorMessage"]
    assert "web-service: deployment of workshop_web:1 FAILED" in cause
    assert "ECS deployment circuit breaker: tasks failed to start." in cause
    # Two launches of 2 tasks: the 3rd failure trips the breaker (max(ceil(0.5 * 2), 3)), the
    # 4th task of that launch fails too.
    assert "4 failed tasks" in cause
    assert "CannotPullContainerError: pull access denied" in cause  # the last error event
    assert "ECS did not roll web-service back" in cause
    assert "api-service" not in cause
    assert "db-service" not in cause
    checks = entered(history, "Check Services")
    assert len(checks) <= max_attempts(history) // 4  # measured: 11 checks of the 120 allowed
    assert "Verify DNS" not in states_entered(history)
    assert "Roll Back" in states_entered(history)
    assert account_snapshot(emulator) == before  # the rollback removed what the build created


def test_services_that_never_become_ready_end_in_a_bounded_clear_timeout(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Tasks that run but are never registered in Cloud Map: no deployment failed, so the
    build polls its whole budget, then fails with ServicesNotReady naming the service."""
    emulator.world.faults.tasks_not_registered("db-service")

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "ServicesNotReady"
    assert "db-service: 1/1 tasks running, 0/1 registered in Cloud Map" in described["cause"]
    assert "web-service" not in described["cause"]  # only the service that is not ready is named
    checks = entered(history, "Check Services")
    assert len(checks) == max_attempts(history)
    assert "Verify DNS" not in states_entered(history)


def test_an_eventbridge_event_starts_a_build(emulator: Any, workshop_spec: dict[str, Any]) -> None:
    events = emulator.client("events")
    response = events.put_events(
        Entries=[
            {
                "Source": "envbuild",
                "DetailType": "Environment Build Requested",
                "Detail": json.dumps(workshop_spec),
            },
            {
                "Source": "envbuild",
                "DetailType": "Something Else",
                "Detail": json.dumps(workshop_spec),
            },
        ]
    )
    assert response["FailedEntryCount"] == 0
    sfn = emulator.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=emulator.state_machine_arn)["executions"]
    assert len(executions) == 1  # only the matching detail-type starts a build
    described = emulator.wait(executions[0]["executionArn"])
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["input"]) == workshop_spec  # InputPath $.detail: the spec itself


def test_existing_namespace_in_the_vpc_is_adopted(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    sd = emulator.client("servicediscovery")
    existing = existing_namespace(emulator, "workshop.local", workshop_spec["namespace"]["vpcId"])

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    summary = json.loads(described["output"])
    assert summary["namespace"]["id"] == existing
    assert summary["namespace"]["adopted"] is True
    assert [n["Id"] for n in sd.list_namespaces()["Namespaces"]] == [existing]
    assert entered(history, "Check Namespace Operation") == []


def test_any_namespace_names_counts_and_ports(emulator: Any) -> None:
    p = emulator.prerequisites
    spec = {
        "environment": "shop",
        "namespace": {"name": "shop.internal", "vpcId": p["VPC_ID"]},
        "cluster": p["CLUSTER_NAME"],
        "network": {"subnets": [p["PRIVATE_SUBNET_2"]], "securityGroups": [p["ECS_SG"]]},
        "services": [
            {"name": "cart", "image": "shop/cart:1.2", "port": 8080, "desiredCount": 3},
            {
                "name": "checkout",
                "image": "shop/checkout:4",
                "port": 9000,
                "cpu": "512",
                "memory": "1024",
            },
            {
                "name": "payments-v2",
                "image": "shop/pay:7",
                "port": 443,
                "desiredCount": 2,
                "dnsTtl": 10,
            },
            {
                "name": "search",
                "image": "shop/search:1",
                "port": 9200,
                "desiredCount": 4,
                "environment": {"CART_URL": "http://cart.shop.internal:8080"},
            },
        ],
    }

    described, _ = run_build(emulator, spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    answers = {s["dnsName"]: len(s["ips"]) for s in json.loads(described["output"])["services"]}
    assert answers == {
        "cart.shop.internal": 3,
        "checkout.shop.internal": 1,
        "payments-v2.shop.internal": 2,
        "search.shop.internal": 4,
    }
    sd = emulator.client("servicediscovery")
    payments = next(s for s in sd.list_services()["Services"] if s["Name"] == "payments-v2")
    assert sd.get_service(Id=payments["Id"])["Service"]["DnsConfig"]["DnsRecords"] == [
        {"Type": "A", "TTL": 10}
    ]


def test_an_ecs_service_of_the_same_name_elsewhere_is_left_alone(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    first, _ = run_build(emulator, workshop_spec)
    assert first["status"] == "SUCCEEDED", first.get("cause")
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    ecs = emulator.client("ecs")
    names = ["web-service", "api-service", "db-service"]
    before = ecs.describe_services(cluster=cluster, services=names)["services"]
    other = json.loads(json.dumps(workshop_spec))
    other["environment"] = "other"
    other["namespace"]["name"] = "other.local"

    described, history = run_build(emulator, other)

    assert described["status"] == "FAILED"
    assert described["error"] == "PreflightFailed"  # found before anything is created (issue 14)
    cause = json.loads(described["cause"])["errorMessage"]
    assert cause.startswith("3 problem(s)")
    assert (
        f"ECS service web-service exists in cluster {cluster} and is envbuild's for environment"
        " workshop" in cause
    )
    assert "Prepare Namespace And Task Definitions" not in states_entered(history)
    after = ecs.describe_services(cluster=cluster, services=names)["services"]
    assert [(s["serviceRegistries"], s["taskDefinition"], s["desiredCount"]) for s in after] == [
        (s["serviceRegistries"], s["taskDefinition"], s["desiredCount"]) for s in before
    ]
