"""One test per path of the teardown state machine, run on the real ASL in the emulator.

Each asserts on the execution (status, Error, Cause, history) and on what exists in the emulated
account afterwards, listed through the AWS APIs. The emulator enforces AWS's deletion constraints
(Cloud Map DeleteService / DeleteNamespace -> ResourceInUse while not empty, ECS DeleteService
only at desiredCount 0), so a green teardown proves its order.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from envbuild_emulator.template import Template, load_yaml
from tests.workflow.helpers import entered, registry_id, run_build, states_entered

OPTIONS = {"deleteLogGroups": True, "deregisterTaskDefinitions": True}


def run_teardown(
    emulator: Any, document: dict[str, Any], machine_arn: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if machine_arn is None:
        arn = emulator.start_teardown(document)
    else:
        arn = emulator.client("stepfunctions").start_execution(
            stateMachineArn=machine_arn, input=json.dumps(document)
        )["executionArn"]
    described = emulator.wait(arn)
    return described, emulator.history(arn)


def full_listing(emulator: Any) -> dict[str, Any]:
    """Everything a build can create, in full: Cloud Map namespaces, services and instances,
    Route 53 zones and their records, ACTIVE ECS services, ACTIVE task definitions, log groups."""
    sd, ecs, logs, r53 = (
        emulator.client(s) for s in ("servicediscovery", "ecs", "logs", "route53")
    )
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    namespaces = {n["Id"]: n["Name"] for n in sd.list_namespaces()["Namespaces"]}
    services = [
        (
            namespaces.get(s.get("NamespaceId", ""), s.get("NamespaceId")),
            s["Name"],
            sorted(
                (i["Id"], json.dumps(i.get("Attributes", {}), sort_keys=True))
                for i in sd.list_instances(ServiceId=s["Id"])["Instances"]
            ),
        )
        for s in (sd.get_service(Id=summary["Id"])["Service"] for summary in _services(sd))
    ]
    zones = {}
    for zone in r53.list_hosted_zones()["HostedZones"]:
        records = r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
        zones[(zone["Name"], zone["Config"].get("PrivateZone"))] = sorted(
            json.dumps(record, sort_keys=True) for record in records
        )
    arns = ecs.list_services(cluster=cluster)["serviceArns"]
    active = (
        sorted(
            s["serviceName"]
            for s in ecs.describe_services(cluster=cluster, services=arns)["services"]
            if s["status"] == "ACTIVE"
        )
        if arns
        else []
    )
    return {
        "namespaces": sorted(namespaces.values()),
        "services": sorted(services, key=json.dumps),
        "zones": sorted(zones.items(), key=lambda item: json.dumps(item[0])),
        "ecs_services": active,
        "task_definitions": sorted(
            ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
        ),
        "log_groups": sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]),
    }


def _services(sd: Any) -> list[dict[str, Any]]:
    return [s for page in sd.get_paginator("list_services").paginate() for s in page["Services"]]


def built(emulator: Any, spec: dict[str, Any]) -> dict[str, Any]:
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    summary: dict[str, Any] = json.loads(described["output"])
    return summary


def deploy_variant(emulator: Any, name: str, change: Any) -> str:
    """Deploy the teardown ASL with ``change(states)`` applied, as a state machine of its own."""
    account = emulator.client("sts").get_caller_identity()["Account"]
    template = Template(
        emulator.template_path, load_yaml(emulator.template_path), account, emulator.region
    )
    (machine,) = [
        m for m in template.state_machines() if m.logical_id == "TeardownEnvironmentStateMachine"
    ]
    definition = json.loads(machine.definition)
    change(definition["States"])
    role = emulator.client("iam").create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "states.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    return str(
        emulator.client("stepfunctions").create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=role
        )["stateMachineArn"]
    )


def with_static_instance(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with a static instance of web (envbuild registers it and the environment record
    lists it: the teardown deregisters it; one registered by hand would keep its registry)."""
    web = next(s for s in spec["services"] if s["name"] == "web")
    others = [s for s in spec["services"] if s["name"] != "web"]
    instance = {"id": "static-1", "ipv4": "10.0.3.200"}
    return {**spec, "services": [{**web, "instances": [instance]}, *others]}


# ---------------------------------------------------------------------------------------------


def test_build_then_teardown_leaves_the_account_as_before_the_build(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    before = full_listing(emulator)
    summary = built(emulator, workshop_spec)
    assert full_listing(emulator) != before

    started = time.monotonic()
    described, history = run_teardown(emulator, {**workshop_spec, **OPTIONS})
    elapsed = time.monotonic() - started

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert full_listing(emulator) == before
    output = json.loads(described["output"])
    removed = output["removed"]
    assert removed["ecsServices"] == ["api-service", "db-service", "web-service"]
    assert sorted(removed["registries"]) == sorted(
        registry_id(summary, s) for s in summary["services"]
    )
    assert removed["namespace"] == {"id": summary["namespace"]["id"], "name": "workshop.local"}
    assert removed["logGroups"] == ["/ecs/workshop_api", "/ecs/workshop_db", "/ecs/workshop_web"]
    assert removed["taskDefinitions"] == ["workshop_api:1", "workshop_db:1", "workshop_web:1"]
    assert output["kept"] == []
    # the ECS services are INACTIVE, their tasks STOPPED (not merely deleted out of order)
    ecs = emulator.client("ecs")
    cluster = workshop_spec["cluster"]
    assert ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"] == []
    stopped = ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
    assert {
        t["lastStatus"] for t in ecs.describe_tasks(cluster=cluster, tasks=stopped)["tasks"]
    } == {"STOPPED"}
    assert len(entered(history, "Check Tasks Stopped")) >= 1  # the tasks took time to stop
    assert elapsed < 60


def test_without_the_options_log_groups_and_task_definitions_stay(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    described, _ = run_teardown(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    after = full_listing(emulator)
    assert after["namespaces"] == []
    assert after["ecs_services"] == []
    assert len(after["task_definitions"]) == 3
    assert {"/ecs/workshop_api", "/ecs/workshop_db", "/ecs/workshop_web"} <= set(
        after["log_groups"]
    )


def test_teardown_twice_in_a_row_succeeds(emulator: Any, workshop_spec: dict[str, Any]) -> None:
    before = full_listing(emulator)
    built(emulator, workshop_spec)
    first, _ = run_teardown(emulator, {**workshop_spec, **OPTIONS})
    assert first["status"] == "SUCCEEDED", first.get("cause")

    second, history = run_teardown(emulator, {**workshop_spec, **OPTIONS})

    assert second["status"] == "SUCCEEDED", second.get("cause")
    output = json.loads(second["output"])
    assert output["found"] is False
    assert "nothing found" in output["message"]
    assert "Wait For Tasks To Stop" not in states_entered(history)
    assert full_listing(emulator) == before


def test_teardown_after_a_build_that_failed_half_way_succeeds(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    before = full_listing(emulator)
    emulator.world.faults.tasks_fail_to_start("web-service")
    failed, _ = run_build(emulator, workshop_spec)
    assert failed["status"] == "FAILED"
    assert failed["error"] == "DeploymentFailed"

    described, _ = run_teardown(emulator, {**workshop_spec, **OPTIONS})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert full_listing(emulator) == before


def test_teardown_of_a_never_built_environment_reports_nothing_found(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    before = full_listing(emulator)

    described, history = run_teardown(emulator, {**workshop_spec, **OPTIONS})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["found"] is False
    assert output["message"] == "nothing found for environment workshop: nothing to remove"
    assert output["removed"]["namespace"] is None
    assert full_listing(emulator) == before
    assert entered(history, "Wait For Tasks To Stop") == []


def test_an_adopted_namespace_is_kept_and_reported(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    sd = emulator.client("servicediscovery")
    operation = sd.create_private_dns_namespace(
        Name="workshop.local", Vpc=workshop_spec["namespace"]["vpcId"]
    )["OperationId"]
    emulator.clock.advance(120)
    existing = sd.get_operation(OperationId=operation)["Operation"]["Targets"]["NAMESPACE"]
    before = full_listing(emulator)
    summary = built(emulator, workshop_spec)
    assert summary["namespace"]["adopted"] is True

    described, _ = run_teardown(emulator, {**workshop_spec, **OPTIONS})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["removed"]["namespace"] is None
    (kept,) = output["kept"]
    assert (kept["type"], kept["id"], kept["name"]) == ("namespace", existing, "workshop.local")
    assert "adopted" in kept["reason"]
    assert sd.get_namespace(Id=existing)["Namespace"]["Name"] == "workshop.local"
    assert full_listing(emulator) == before  # the registries in it are gone, the namespace stays


def test_an_eventbridge_event_starts_a_teardown(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    response = emulator.client("events").put_events(
        Entries=[
            {
                "Source": "envbuild",
                "DetailType": "Environment Teardown Requested",
                "Detail": json.dumps({**workshop_spec, **OPTIONS}),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0
    sfn = emulator.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=emulator.teardown_state_machine_arn)[
        "executions"
    ]
    assert len(executions) == 1
    builds = sfn.list_executions(stateMachineArn=emulator.state_machine_arn)["executions"]
    assert len(builds) == 1  # the teardown event started no build

    described = emulator.wait(executions[0]["executionArn"])

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["input"]) == {**workshop_spec, **OPTIONS}
    assert full_listing(emulator)["namespaces"] == []


def test_a_given_plan_removes_exactly_what_it_names(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    summary = built(emulator, workshop_spec)
    db = next(s for s in summary["services"] if s["name"] == "db")
    before = full_listing(emulator)
    plan = {
        "environment": "workshop",
        "cluster": workshop_spec["cluster"],
        "ecsServices": ["db-service"],
        "registries": [registry_id(summary, db)],
        "taskDefinitions": ["workshop_db:1"],
    }

    described, history = run_teardown(emulator, {"plan": plan})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert "Plan Teardown" in states_entered(history)  # checked against the record and tags
    after = full_listing(emulator)
    assert after["ecs_services"] == ["api-service", "web-service"]
    assert [s[1] for s in after["services"]] == sorted(
        s[1] for s in before["services"] if s[1] != "db"
    )
    assert after["namespaces"] == ["workshop.local"]
    assert after["log_groups"] == before["log_groups"]
    assert [arn.rsplit("/", 1)[-1] for arn in after["task_definitions"]] == [
        "workshop_api:1",
        "workshop_web:1",
    ]
    removed = json.loads(described["output"])["removed"]
    assert removed["ecsServices"] == ["db-service"]
    assert removed["registries"] == [registry_id(summary, db)]


def test_an_invalid_plan_fails_before_anything_is_removed(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    before = full_listing(emulator)

    described, _ = run_teardown(
        emulator,
        {
            "plan": {
                "environment": "workshop",
                "ecsServices": ["web-service"],
                "registry": ["srv-1"],
            }
        },
    )

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidPlan"
    assert "plan.registry: unknown field (did you mean 'registries'?)" in described["cause"]
    assert full_listing(emulator) == before


@pytest.mark.parametrize(
    ("plan", "named"),
    [
        ("everything", 'got a string ("everything")'),
        (["web-service"], 'got an array (["web-service"])'),
        (3, "got a number (3)"),
        (None, "got null"),
    ],
)
def test_a_plan_that_is_not_a_json_object_fails_invalid_plan_naming_it(
    emulator: Any, workshop_spec: dict[str, Any], plan: object, named: str
) -> None:
    built(emulator, workshop_spec)
    before = full_listing(emulator)

    described, history = run_teardown(emulator, {"plan": plan})

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidPlan"  # was a raw pydantic ValidationError
    cause = json.loads(described["cause"])["errorMessage"]
    assert cause.startswith("the plan must be a JSON object (a removal plan: environment, cluster,")
    assert f"kept), {named}; to remove everything" in cause
    assert "start the teardown with the environment's spec instead of a plan" in cause
    assert states_entered(history) == [
        "Plan Only?",
        "Acquire Lock",
        "Teardown Refused",
    ]  # before the lock
    assert full_listing(emulator) == before


def test_static_instances_are_deregistered_before_their_registry_is_deleted(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    before = full_listing(emulator)
    spec = with_static_instance(workshop_spec)
    summary = built(emulator, spec)
    web = next(s for s in summary["services"] if s["name"] == "web")

    described, history = run_teardown(emulator, {**spec, **OPTIONS})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["removed"]["instances"] == [f"{registry_id(summary, web)}/static-1"]
    assert len(entered(history, "Check Deregistrations")) >= 1
    assert full_listing(emulator) == before


def _skip_deregistration_wait(states: dict[str, Any]) -> None:
    states["Deregister Instances"]["Next"] = "Delete Cloud Map Services"
    for name in ("Instances Deregistered?", "Wait For Deregistrations", "Check Deregistrations"):
        del states[name]
    del states["Deregistrations Timed Out"]


def _namespace_before_registries(states: dict[str, Any]) -> None:
    states["Instances Deregistered?"]["Choices"][0]["Next"] = "Delete Namespace"
    del states["Delete Cloud Map Services"]


@pytest.mark.parametrize(
    ("variant", "change", "cause"),
    [
        ("no-deregistration-wait", _skip_deregistration_wait, "has registered instances"),
        ("namespace-first", _namespace_before_registries, "has associated services"),
    ],
)
def test_a_teardown_in_the_wrong_order_fails_with_resource_in_use(
    emulator: Any, workshop_spec: dict[str, Any], variant: str, change: Any, cause: str
) -> None:
    spec = with_static_instance(workshop_spec)
    built(emulator, spec)
    wrong = deploy_variant(emulator, f"teardown-{variant}", change)

    described, history = run_teardown(emulator, spec, machine_arn=wrong)

    assert described["status"] == "FAILED"
    assert described["error"] == "ResourceInUse"
    assert cause in described["cause"]
    assert states_entered(history)[-1] == "Teardown Failed"
    # the same input through the real ASL succeeds: the order, not the input, made it fail
    fixed, _ = run_teardown(emulator, spec)
    assert fixed["status"] == "SUCCEEDED", fixed.get("cause")
