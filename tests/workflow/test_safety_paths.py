"""Paths that keep a build safe: preflight failures (nothing created) and one build per environment."""

from __future__ import annotations

import json
from typing import Any

from tests.workflow.helpers import account_snapshot, entered, run_build, states_entered


def lock_items(emulator: Any) -> list[dict[str, Any]]:
    dynamodb = emulator.client("dynamodb")
    table = dynamodb.list_tables()["TableNames"][0]
    return list(dynamodb.scan(TableName=table)["Items"])


def assert_rejected_by_preflight(emulator: Any, spec: dict[str, Any], *fragments: str) -> str:
    before = account_snapshot(emulator)
    described, history = run_build(emulator, spec)
    assert described["status"] == "FAILED"
    assert described["error"] == "PreflightFailed"
    cause = json.loads(described["cause"])["errorMessage"]
    for fragment in fragments:
        assert fragment in cause
    assert "Prepare Namespace And Task Definitions" not in states_entered(history)
    assert account_snapshot(emulator) == before
    assert lock_items(emulator) == []  # released on the failure path
    return cause


def test_vpc_without_dns_hostnames_is_rejected_before_anything_is_created(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    vpc = workshop_spec["namespace"]["vpcId"]
    emulator.client("ec2").modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": False})

    assert_rejected_by_preflight(emulator, workshop_spec, f"VPC {vpc} has DNS hostnames disabled")


def test_every_preflight_problem_is_named_at_once(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    ec2 = emulator.client("ec2")
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    iam = emulator.client("iam")
    lambda_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    wrong_role = iam.create_role(
        RoleName="notForEcs", AssumeRolePolicyDocument=json.dumps(lambda_trust)
    )
    spec = json.loads(json.dumps(workshop_spec))
    spec["network"]["subnets"] = [foreign, "subnet-0123456789abcdef0"]
    spec["cluster"] = "no-such-cluster"
    spec["taskRoleArn"] = wrong_role["Role"]["Arn"]

    cause = assert_rejected_by_preflight(
        emulator,
        spec,
        f"subnet {foreign} is in {other_vpc}",
        "subnet subnet-0123456789abcdef0 does not exist",
        "ECS cluster no-such-cluster does not exist",
        "does not trust ecs-tasks.amazonaws.com",
    )
    assert cause.startswith("4 problem(s)")


def test_a_private_zone_of_that_name_on_the_vpc_is_a_conflict_up_front(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    vpc = workshop_spec["namespace"]["vpcId"]
    zone = emulator.client("route53").create_hosted_zone(
        Name="workshop.local",
        CallerReference="by-hand",
        HostedZoneConfig={"PrivateZone": True},
        VPC={"VPCRegion": emulator.region, "VPCId": vpc},
    )["HostedZone"]["Id"]

    assert_rejected_by_preflight(
        emulator, workshop_spec, "ConflictingDomainExists", zone.rsplit("/", 1)[-1]
    )


def test_the_lock_is_released_after_a_successful_build(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert lock_items(emulator) == []
    assert states_entered(history)[-2:] == ["Release Lock", "Build Succeeded"]
    assert "environment" in json.loads(described["output"])  # the summary is still the output


def test_a_second_build_of_the_same_environment_fails_fast_with_environment_busy(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    first = emulator.start_build(workshop_spec, name="first")
    second = emulator.start_build(workshop_spec, name="second")
    outcomes = {arn: emulator.wait(arn) for arn in (first, second)}

    statuses = sorted(d["status"] for d in outcomes.values())
    assert statuses == ["FAILED", "SUCCEEDED"]
    busy = next(d for d in outcomes.values() if d["status"] == "FAILED")
    winner = next(arn for arn, d in outcomes.items() if d["status"] == "SUCCEEDED")
    assert busy["error"] == "EnvironmentBusy"
    assert winner in busy["cause"]  # names the running execution
    loser_history = emulator.history(busy["executionArn"])
    assert states_entered(loser_history) == [
        "Validate Spec",
        "Plan Only?",
        "Acquire Lock",
        "Build Failed",
    ]
    assert entered(loser_history, "Create Namespace") == []
    sd = emulator.client("servicediscovery")
    assert len(sd.list_namespaces()["Namespaces"]) == 1
    assert len(emulator.client("ecs").list_task_definitions()["taskDefinitionArns"]) == 3
    assert lock_items(emulator) == []


def test_a_build_event_delivered_twice_starts_at_most_one_build_that_changes_anything(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    entry = {
        "Source": "envbuild",
        "DetailType": "Environment Build Requested",
        "Detail": json.dumps(workshop_spec),
    }
    emulator.client("events").put_events(Entries=[entry, entry])
    sfn = emulator.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=emulator.state_machine_arn)["executions"]
    outcomes = [emulator.wait(e["executionArn"]) for e in executions]

    assert sorted(d["status"] for d in outcomes) == ["FAILED", "SUCCEEDED"]
    assert next(d for d in outcomes if d["status"] == "FAILED")["error"] == "EnvironmentBusy"
    assert len(emulator.client("ecs").list_task_definitions()["taskDefinitionArns"]) == 3


def test_a_teardown_waits_for_no_one_while_a_build_holds_the_environment(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built, _ = run_build(emulator, workshop_spec)
    assert built["status"] == "SUCCEEDED", built.get("cause")
    gate = emulator.dispatcher.hold("CheckServicesFunction")  # a re-run, in its readiness poll
    running = emulator.start_build(workshop_spec)
    assert gate.entered.wait(120)
    before = account_snapshot(emulator)

    arn = emulator.start_teardown({**workshop_spec, "deleteLogGroups": True})
    described = emulator.wait(arn)

    assert described["status"] == "FAILED"
    assert described["error"] == "EnvironmentBusy"
    assert f"held by a build ({running}" in described["cause"]
    assert "which is RUNNING" in described["cause"]
    assert account_snapshot(emulator) == before
    assert [i["executionArn"]["S"] for i in lock_items(emulator)] == [running]  # not released by it
    gate.release()
    assert emulator.wait(running)["status"] == "SUCCEEDED"
    assert lock_items(emulator) == []


def test_a_lock_whose_holder_step_functions_does_not_know_is_taken_over(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    dynamodb = emulator.client("dynamodb")
    table = dynamodb.list_tables()["TableNames"][0]
    ghost = emulator.state_machine_arn.replace(":stateMachine:", ":execution:") + ":ghost"
    dynamodb.put_item(
        TableName=table,
        Item={
            "environment": {"S": "workshop"},
            "executionArn": {"S": ghost},
            "kind": {"S": "build"},
            "acquiredAt": {"N": "1"},
            "expiresAt": {"N": "99999999999"},
        },
    )

    described, _ = run_build(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert lock_items(emulator) == []
