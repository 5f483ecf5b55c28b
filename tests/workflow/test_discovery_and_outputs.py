"""Issue 6 on the real ASL in the emulator: each verification leg broken and intact, static
instances, health, outputs (SSM parameters, env file) and the build's EventBridge events."""

from __future__ import annotations

import contextvars
import io
import json
from typing import Any

import pytest

from envbuild.cli import print_summary, resources_env
from envbuild_lambda.aws import Caller, Clients
from envbuild_lambda.errors import DiscoveryMismatch
from envbuild_lambda.spec import parse_spec
from envbuild_lambda.state import NamespaceState
from envbuild_lambda.steps import verify
from tests.workflow.helpers import entered, registry_id, run_build, task_ips

CUSTOM = {
    "id": "custom-web-instance",
    "ipv4": "10.0.3.100",
    "attributes": {"environment": "production", "version": "1.0"},
}


def capture_events(emulator: Any) -> str:
    """An EventBridge rule for source envbuild -> an SQS queue (what a consumer would set up)."""
    sqs, events = emulator.client("sqs"), emulator.client("events")
    queue_url = sqs.create_queue(QueueName="envbuild-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(Name="envbuild-events", EventPattern=json.dumps({"source": ["envbuild"]}))
    events.put_targets(Rule="envbuild-events", Targets=[{"Id": "queue", "Arn": queue_arn}])
    return str(queue_url)


def received(emulator: Any, queue_url: str) -> list[dict[str, Any]]:
    messages = emulator.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def parameters(emulator: Any, environment: str) -> dict[str, str]:
    ssm = emulator.client("ssm")
    found = ssm.get_parameters_by_path(Path=f"/envbuild/{environment}")["Parameters"]
    return {p["Name"].rsplit("/", 1)[-1]: p["Value"] for p in found}


def test_a_build_with_a_static_instance_hands_the_same_ids_to_ssm_the_event_and_the_env_file(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    queue = capture_events(emulator)
    workshop_spec["services"][0]["instances"] = [CUSTOM]

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    summary = json.loads(described["output"])
    web = next(s for s in summary["services"] if s["name"] == "web")
    # the static instance answers beside the two tasks, in every leg
    assert len(web["ips"]) == 3
    assert "10.0.3.100" in web["ips"]
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    assert set(web["ips"]) - task_ips(emulator, cluster, "web-service") == {"10.0.3.100"}
    zone = emulator.client("route53").list_resource_record_sets(
        HostedZoneId=summary["namespace"]["hostedZoneId"]
    )["ResourceRecordSets"]
    assert (
        sorted(r["ResourceRecords"][0]["Value"] for r in zone if r["Name"] == "web.workshop.local.")
        == web["ips"]
    )
    assert web["staticInstances"] == [
        {
            "id": "custom-web-instance",
            "ipv4": "10.0.3.100",
            "attributes": {
                "AWS_INSTANCE_IPV4": "10.0.3.100",
                "environment": "production",
                "version": "1.0",
            },
        }
    ]
    # every instance Cloud Map holds is HEALTHY (the check requires it), the tasks' ones too
    sd = emulator.client("servicediscovery")
    for service in summary["services"]:
        health = sd.get_instances_health_status(ServiceId=registry_id(summary, service))["Status"]
        assert sorted(health.values()) == ["HEALTHY"] * len(service["ips"])
    discovered = emulator.client("servicediscovery").discover_instances(
        NamespaceName="workshop.local", ServiceName="web"
    )["Instances"]
    custom = next(i for i in discovered if i["InstanceId"] == "custom-web-instance")
    assert custom["Attributes"] == {
        "AWS_INSTANCE_IPV4": "10.0.3.100",
        "environment": "production",
        "version": "1.0",
    }

    shown = io.StringIO()
    print_summary(summary, shown)
    assert (
        "static custom-web-instance 10.0.3.100 HEALTHY  environment=production, version=1.0"
        in shown.getvalue()
    )

    # the outputs: one set of ids in the execution output, SSM, the event and the env file
    outputs = summary["outputs"]
    assert outputs["NAMESPACE_ID"] == summary["namespace"]["id"]
    assert {outputs[f"{n.upper()}_SERVICE_ID"] for n in ("web", "api", "db")} == {
        registry_id(summary, s) for s in summary["services"]
    }
    assert sorted(outputs) == sorted(
        ("NAMESPACE_ID", "WEB_SERVICE_ID", "API_SERVICE_ID", "DB_SERVICE_ID")
    )
    stored = parameters(emulator, "workshop")
    assert stored == outputs
    env_file = dict(
        line.removeprefix("export ").split("=", 1) for line in resources_env(summary).splitlines()
    )
    assert {key: env_file[key] for key in outputs} == outputs  # the same names, the same ids
    (ready,) = received(emulator, queue)
    assert (ready["source"], ready["detail-type"]) == ("envbuild", "Environment Ready")
    # Step Functions adds the state machine's and the execution's ARNs to the event's resources
    assert described["executionArn"] in ready["resources"]
    assert ready["detail"]["environment"] == "workshop"
    assert ready["detail"]["outputs"] == outputs
    assert ready["detail"]["parameterPath"] == "/envbuild/workshop/"
    assert {ready["detail"]["parameterPath"] + k for k in ready["detail"]["outputs"]} == {
        p["Name"]
        for p in emulator.client("ssm").get_parameters_by_path(Path="/envbuild/workshop")[
            "Parameters"
        ]
    }
    assert len(entered(history, "Announce Environment Ready")) == 1
    tags = emulator.client("ssm").list_tags_for_resource(
        ResourceType="Parameter", ResourceId="/envbuild/workshop/NAMESPACE_ID"
    )["TagList"]
    assert {t["Key"]: t["Value"] for t in tags}["envbuild:managed"] == "true"


def test_a_missing_route53_record_fails_verification_naming_the_leg_and_announces_the_failure(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    queue = capture_events(emulator)
    emulator.world.faults.drop_dns_records("api.workshop.local")

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "DiscoveryMismatch"
    cause = described["cause"]
    assert "1 of 3 DNS name(s) fail the three-way check" in cause
    assert "api.workshop.local (service api): Route 53 A records missing" in cause
    assert "Route 53 A record missing for a Cloud Map instance" in cause
    (failed,) = received(emulator, queue)
    assert failed["detail-type"] == "Environment Build Failed"
    assert failed["detail"]["environment"] == "workshop"
    assert failed["detail"]["Error"] == "DiscoveryMismatch"
    assert "api.workshop.local" in failed["detail"]["Cause"]
    assert failed["detail"]["rollback"]["outcome"]  # what the rollback removed
    assert entered(history, "Roll Back")
    assert parameters(emulator, "workshop") == {}  # verification failed: no outputs written


def test_tasks_that_are_never_registered_fail_the_readiness_check_naming_the_service(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    emulator.world.faults.tasks_not_registered("db-service")
    workshop_spec["onFailure"] = "keep"

    described, _history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "ServicesNotReady"
    assert "db-service: 1/1 tasks running, 0/1 registered in Cloud Map" in described["cause"]
    assert "failed to register" in described["cause"]  # the ECS service's own event
    assert "web-service" not in described["cause"]


def test_an_invalid_spec_is_rejected_without_any_event(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """A spec rejected before the lock started no build of the environment: nothing is sent
    (Environment Build Failed is for a build that took the environment's lock)."""
    queue = capture_events(emulator)
    workshop_spec["services"][0]["instances"] = [
        {"id": "x", "ipv4": "10.0.3.1", "attributes": {"AWS_INSTANCE_PORT": "80"}}
    ]

    described, _history = run_build(emulator, workshop_spec)

    assert described["error"] == "InvalidSpec"
    assert "services[0].instances[0].attributes: AWS_INSTANCE_PORT" in described["cause"]
    assert received(emulator, queue) == []


# --- breaking a leg after the build: the verification step against the emulated account ---------


@pytest.fixture
def built(emulator: Any, workshop_spec: dict[str, Any]) -> dict[str, Any]:
    described, _ = run_build(emulator, workshop_spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    return dict(json.loads(described["output"]))


def verify_now(emulator: Any, workshop_spec: dict[str, Any], summary: dict[str, Any]) -> None:
    namespace = summary["namespace"]
    verify.verify(
        Clients(),
        Caller("aws", emulator.region, summary["namespace"]["arn"].split(":")[4]),
        parse_spec(workshop_spec),
        NamespaceState(
            name=namespace["name"],
            vpcId=workshop_spec["namespace"]["vpcId"],
            id=namespace["id"],
            arn=namespace["arn"],
            hostedZoneId=namespace["hostedZoneId"],
            status="SUCCESS",
            poll={"attempt": 0, "waitSeconds": 1, "maxAttempts": 1},
        ),
        {s["name"]: registry_id(summary, s) for s in summary["services"]},
        {s["name"]: s["taskDefinition"] for s in summary["services"]},
        2,
    )


def test_intact_environment_passes_the_three_way_check_again(
    emulator: Any, workshop_spec: dict[str, Any], built: dict[str, Any]
) -> None:
    verify_now(emulator, workshop_spec, built)


def test_a_running_task_missing_from_cloud_map_fails_naming_its_ip(
    emulator: Any, workshop_spec: dict[str, Any], built: dict[str, Any]
) -> None:
    sd = emulator.client("servicediscovery")
    web = next(s for s in built["services"] if s["name"] == "web")
    instance = sd.list_instances(ServiceId=registry_id(built, web))["Instances"][0]
    sd.deregister_instance(ServiceId=registry_id(built, web), InstanceId=instance["Id"])
    emulator.clock.advance(10)  # the operation completes (and takes the A record with it)

    with pytest.raises(DiscoveryMismatch) as caught:
        verify_now(emulator, workshop_spec, built)
    ip = instance["Attributes"]["AWS_INSTANCE_IPV4"]
    assert (
        f"web.workshop.local (service web): Cloud Map (DiscoverInstances HEALTHY) missing ['{ip}']"
        f" ({verify.CAUSE_NOT_REGISTERED})" in str(caught.value)
    )


def test_a_route53_record_deleted_in_the_zone_fails_naming_the_route53_leg(
    emulator: Any, workshop_spec: dict[str, Any], built: dict[str, Any]
) -> None:
    r53 = emulator.client("route53")
    zone = built["namespace"]["hostedZoneId"]
    record = next(
        r
        for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        if r["Type"] == "A" and r["Name"] == "db.workshop.local."
    )
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]},
    )

    with pytest.raises(DiscoveryMismatch) as caught:
        verify_now(emulator, workshop_spec, built)
    ip = record["ResourceRecords"][0]["Value"]
    assert (
        f"db.workshop.local (service db): Route 53 A records missing ['{ip}']"
        f" ({verify.CAUSE_RECORD_MISSING})" in str(caught.value)
    )


def test_an_unhealthy_instance_is_reported_by_id_and_ip(
    emulator: Any, workshop_spec: dict[str, Any], built: dict[str, Any]
) -> None:
    sd = emulator.client("servicediscovery")
    api = next(s for s in built["services"] if s["name"] == "api")
    instance = sd.list_instances(ServiceId=registry_id(built, api))["Instances"][0]
    sd.update_instance_custom_health_status(
        ServiceId=registry_id(built, api), InstanceId=instance["Id"], Status="UNHEALTHY"
    )

    with pytest.raises(DiscoveryMismatch) as caught:
        verify_now(emulator, workshop_spec, built)
    ip = instance["Attributes"]["AWS_INSTANCE_IPV4"]
    message = str(caught.value)
    assert f"instance {instance['Id']} ({ip}) is UNHEALTHY" in message
    assert f"Cloud Map (DiscoverInstances HEALTHY) missing ['{ip}']" in message


def test_teardown_deletes_the_output_parameters_it_created_and_keeps_any_other(
    emulator: Any, workshop_spec: dict[str, Any], built: dict[str, Any]
) -> None:
    ssm = emulator.client("ssm")
    ssm.put_parameter(Name="/envbuild/workshop/MY_NOTE", Value="mine", Type="String")
    ssm.put_parameter(Name="/envbuild/other/NAMESPACE_ID", Value="ns-x", Type="String")

    described = emulator.wait(emulator.start_teardown(workshop_spec))

    assert described["status"] == "SUCCEEDED", described.get("cause")
    summary = json.loads(described["output"])
    assert summary["removed"]["parameters"] == [
        f"/envbuild/workshop/{k}"
        for k in sorted(("NAMESPACE_ID", "WEB_SERVICE_ID", "API_SERVICE_ID", "DB_SERVICE_ID"))
    ]
    assert {"type": "parameter", "name": "/envbuild/workshop/MY_NOTE"}.items() <= next(
        k for k in summary["kept"] if k["type"] == "parameter"
    ).items()
    assert parameters(emulator, "workshop") == {"MY_NOTE": "mine"}
    assert parameters(emulator, "other") == {"NAMESPACE_ID": "ns-x"}


def test_a_parameter_envbuild_did_not_create_is_never_overwritten(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    emulator.client("ssm").put_parameter(
        Name="/envbuild/workshop/NAMESPACE_ID", Value="ns-someone-elses", Type="String"
    )
    workshop_spec["onFailure"] = "keep"

    described, _ = run_build(emulator, workshop_spec)

    assert described["error"] == "ParameterConflict"
    assert (
        "SSM parameter /envbuild/workshop/NAMESPACE_ID exists and was not created by envbuild"
        in (described["cause"])
    )
    assert parameters(emulator, "workshop")["NAMESPACE_ID"] == "ns-someone-elses"


# --- the in-VPC DNS probe (verify.probe) --------------------------------------------------------


def test_the_probe_resolves_every_name_inside_the_vpc_and_reports_the_answers(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    workshop_spec["verify"] = {"probe": True}

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    summary = json.loads(described["output"])
    probe = summary["probe"]
    assert probe["requested"] is True
    assert probe["done"] is True
    assert probe["exitCode"] == 0
    assert probe["answers"] == {s["dnsName"]: s["ips"] for s in summary["services"]}
    assert len(entered(history, "Check DNS Probe")) >= 1
    # the probe's task definition and log group are envbuild-managed (tagged), its log kept
    logs = emulator.client("logs")
    group = logs.describe_log_groups(logGroupNamePrefix="/ecs/workshop__dns-probe")["logGroups"]
    assert [g["logGroupName"] for g in group] == ["/ecs/workshop__dns-probe"]
    assert (
        logs.list_tags_for_resource(resourceArn=group[0]["arn"].removesuffix(":*"))["tags"][
            "envbuild:managed"
        ]
        == "true"
    )
    task_id = probe["taskArn"].rsplit("/", 1)[-1]
    lines = [
        e["message"]
        for e in logs.get_log_events(
            logGroupName="/ecs/workshop__dns-probe", logStreamName=f"ecs/dns-probe/{task_id}"
        )["events"]
    ]
    assert lines[0].startswith("PROBE web.workshop.local OK ")
    definition = emulator.client("ecs").describe_task_definition(
        taskDefinition=probe["taskDefinition"], include=["TAGS"]
    )
    assert {t["key"]: t["value"] for t in definition["tags"]}["envbuild:environment"] == "workshop"

    # teardown removes the probe's log group and task definition with the environment's
    removed = emulator.wait(
        emulator.start_teardown(
            {**workshop_spec, "deleteLogGroups": True, "deregisterTaskDefinitions": True}
        )
    )
    assert removed["status"] == "SUCCEEDED", removed.get("cause")
    gone = json.loads(removed["output"])["removed"]
    assert "/ecs/workshop__dns-probe" in gone["logGroups"]
    assert probe["taskDefinition"] in gone["taskDefinitions"]


def test_the_probe_fails_naming_every_name_when_vpc_dns_hostnames_are_off(
    emulator: Any, workshop_spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Preflight refuses a VPC without DNS hostnames: someone turns them off during the build,
    after the services were verified and before the probe runs."""
    workshop_spec["verify"] = {"probe": True}
    vpc = emulator.prerequisites["VPC_ID"]
    resolve = emulator.dispatcher.resolve_handler

    def hostnames_off_before_the_probe(function: Any) -> Any:
        handler = resolve(function)
        if function.logical_id != "StartDnsProbeFunction":
            return handler

        def run(event: Any, context: Any) -> Any:
            # "someone" else's call: made in a fresh context, so the IAM proof does not count it
            # as the probe function's
            contextvars.Context().run(
                emulator.client("ec2").modify_vpc_attribute,
                VpcId=vpc,
                EnableDnsHostnames={"Value": False},
            )
            return handler(event, context)

        return run

    monkeypatch.setattr(emulator.dispatcher, "resolve_handler", hostnames_off_before_the_probe)

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "ProbeFailed"
    cause = described["cause"]
    assert "could not resolve 3 of 3 name(s) through the VPC resolver" in cause
    assert "web.workshop.local, api.workshop.local, db.workshop.local" in cause
    assert "enableDnsHostnames" in cause
    assert entered(history, "Roll Back")  # a build whose names do not resolve is rolled back


def test_a_rerun_leaves_registered_static_instances_and_parameters_alone(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    workshop_spec["services"][1]["instances"] = [CUSTOM]
    first, _ = run_build(emulator, workshop_spec)
    assert first["status"] == "SUCCEEDED", first.get("cause")
    stored = parameters(emulator, "workshop")

    again, history = run_build(emulator, workshop_spec)

    assert again["status"] == "SUCCEEDED", again.get("cause")
    (created,) = [
        e
        for e in history
        if e["type"] == "TaskStateExited"
        and e["stateExitedEventDetails"]["name"] == "Create Services"
    ]
    # the instance is registered with its attributes already: no RegisterInstance operation
    assert (
        json.loads(created["stateExitedEventDetails"]["output"])["deployment"]["operations"] == {}
    )
    assert parameters(emulator, "workshop") == stored
    assert json.loads(again["output"])["outputs"] == json.loads(first["output"])["outputs"]
