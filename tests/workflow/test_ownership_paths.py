"""Never touch what isn't envbuild's (issue 14): the environment record, teardowns limited to what
it lists and the tags mark, a lock that survives Stop and cannot be bypassed. Each test is the
scenario a careless or hostile user ran, asserted on the account (listing before = after), the
lock and record tables, and the error the user sees."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.workflow.helpers import existing_namespace, registry_id, run_build, states_entered
from tests.workflow.test_teardown_paths import OPTIONS, built, full_listing, run_teardown

LOCKS, RECORDS = "envbuild-EnvironmentLocksTable", "envbuild-EnvironmentRecordsTable"


def items(emulator: Any, table: str) -> list[dict[str, Any]]:
    return list(emulator.client("dynamodb").scan(TableName=table)["Items"])


def start(emulator: Any, machine: str, document: Any, name: str | None = None) -> str:
    sfn = emulator.client("stepfunctions")
    kwargs = {"name": name} if name else {}
    return str(
        sfn.start_execution(stateMachineArn=machine, input=json.dumps(document), **kwargs)[
            "executionArn"
        ]
    )


def stopped(emulator: Any, arn: str, gate: Any) -> dict[str, Any]:
    """The console's "Stop execution" while the execution is in the held step. (moto ends the
    execution ABORTED once the step in flight returns; AWS at once, ignoring the step's result.)"""
    emulator.client("stepfunctions").stop_execution(executionArn=arn, cause="stopped by a user")
    gate.release()
    described = emulator.wait(arn)
    # moto 5.2.5 cannot abort a Parallel branch: it ends the execution FAILED (States.Runtime,
    # "Custom Error Names MUST NOT begin with ...") where AWS says ABORTED. Either way the
    # execution is no longer RUNNING, which is what the lock looks at (docs/aws-fidelity.md).
    # The Stop can also reach moto while the branch's result is being merged (a loaded machine):
    # moto then fails the execution with another States.* runtime error, never a step's own.
    # Or with moto's own Python error when the Stop meets a Lambda Task of a branch
    # (state_task_lambda.py reads ``.region`` of what it pops from its stack: a dict then).
    quirk = described["status"] == "FAILED" and (
        "Custom Error Names" in described.get("cause", "")
        or str(described.get("error", "")).startswith("States.")
        or (
            described.get("error") == "Exception"
            and described.get("cause") == "'dict' object has no attribute 'region'"
        )
    )
    assert described["status"] == "ABORTED" or quirk, (
        described["status"],
        described.get("error"),
        described.get("cause"),
    )
    return described


def foreign_app(emulator: Any) -> dict[str, str]:
    """Another team's app in the same account and cluster: made by hand, untagged."""
    ecs, sd, logs = (emulator.client(s) for s in ("ecs", "servicediscovery", "logs"))
    pre = emulator.prerequisites
    operation = sd.create_private_dns_namespace(Name="other.local", Vpc=pre["VPC_ID"])
    emulator.clock.advance(120)
    namespace = sd.get_operation(OperationId=operation["OperationId"])["Operation"]["Targets"][
        "NAMESPACE"
    ]
    registry = sd.create_service(Name="other", NamespaceId=namespace)["Service"]["Id"]
    logs.create_log_group(logGroupName="/ecs/other-app")
    revision = ecs.register_task_definition(
        family="other-app",
        containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}],
    )["taskDefinition"]
    ecs.create_service(
        cluster=pre["CLUSTER_NAME"],
        serviceName="other-app",
        taskDefinition=f"other-app:{revision['revision']}",
        desiredCount=1,
    )
    return {"namespace": namespace, "registry": registry, "revision": "other-app:1"}


def misspelled(spec: dict[str, Any], field: str) -> tuple[dict[str, Any], str]:
    """The spec with one field of the place misspelled, and the note the teardown gives."""
    if field == "cluster":
        return {**spec, "cluster": "workshop-clustr"}, (
            f"cluster: the spec says workshop-clustr, the record {spec['cluster']}"
        )
    namespace = dict(spec["namespace"])
    if field == "namespace.name":
        namespace["name"] = "workshp.local"
        note = "namespace.name: the spec says workshp.local, the record workshop.local"
    else:
        namespace["vpcId"] = "vpc-0123456789abcdef0"
        note = (
            "namespace.vpcId: the spec says vpc-0123456789abcdef0, the record"
            f" {spec['namespace']['vpcId']}"
        )
    return {**spec, "namespace": namespace}, note


@pytest.mark.parametrize("field", ["cluster", "namespace.name", "namespace.vpcId"])
def test_a_teardown_with_a_misspelled_place_follows_the_record_and_says_so(
    emulator: Any, workshop_spec: dict[str, Any], field: str
) -> None:
    before = full_listing(emulator)
    built(emulator, workshop_spec)
    typo, note = misspelled(workshop_spec, field)

    described, _ = run_teardown(emulator, {**typo, **OPTIONS})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    assert output["notes"] == [f"{note}; the record was followed"]
    assert output["removed"]["ecsServices"] == ["api-service", "db-service", "web-service"]
    assert full_listing(emulator) == before  # no service left running without its DNS
    assert items(emulator, RECORDS) == []  # nothing left: the record is gone too
    assert items(emulator, LOCKS) == []


def test_a_removal_plan_naming_another_teams_resources_is_refused_before_any_change(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    other = foreign_app(emulator)
    before = full_listing(emulator)
    plan = {
        "environment": "workshop",
        "cluster": workshop_spec["cluster"],
        "ecsServices": ["other-app"],
        "registries": [other["registry"]],
        "namespace": {"id": other["namespace"], "name": "other.local"},
        "logGroups": ["/ecs/other-app"],
        "taskDefinitions": [other["revision"]],
    }

    described, history = run_teardown(emulator, {"plan": plan})

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidPlan"
    for named in ("other-app", other["registry"], other["namespace"], "/ecs/other-app"):
        assert named in described["cause"]
    assert "Scale ECS Services To Zero" not in states_entered(history)
    assert full_listing(emulator) == before
    assert items(emulator, LOCKS) == []  # its own lock, released


def staging(spec: dict[str, Any]) -> dict[str, Any]:
    """Another environment in the same account, cluster and VPC."""
    services = [{**service, "name": f"stg-{service['name']}"} for service in spec["services"]]
    return {
        **spec,
        "environment": "staging",
        "namespace": {**spec["namespace"], "name": "staging.local"},
        "services": services,
    }


def test_a_removal_plan_naming_another_environments_resources_is_refused(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    other = built(emulator, staging(workshop_spec))
    before = full_listing(emulator)
    web = next(s for s in other["services"] if s["name"] == "stg-web")
    plan = {
        "environment": "workshop",
        "cluster": workshop_spec["cluster"],
        "ecsServices": ["stg-web-service"],
        "registries": [registry_id(other, web)],
    }

    described, _ = run_teardown(emulator, {"plan": plan})

    assert (described["status"], described["error"]) == ("FAILED", "InvalidPlan")
    cause = described["cause"]
    assert "plan.ecsServices: stg-web-service is not in the environment record" in cause
    assert f"plan.registries: {registry_id(other, web)} (stg-web) is not in the recorded" in cause
    assert full_listing(emulator) == before


def test_a_removal_plan_naming_a_recorded_but_untagged_resource_is_refused(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """A registry the user made with the spec's name before the build: adopted, so recorded by
    name, but without envbuild's tags. A plan may not remove it."""
    namespace = existing_namespace(emulator, "workshop.local", workshop_spec["namespace"]["vpcId"])
    users = emulator.client("servicediscovery").create_service(
        Name="db",
        NamespaceId=namespace,
        DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 60}]},
        HealthCheckCustomConfig={"FailureThreshold": 1},
    )["Service"]["Id"]
    run_build(emulator, workshop_spec)
    before = full_listing(emulator)

    refused, _ = run_teardown(
        emulator, {"plan": {"environment": "workshop", "registries": [users]}}
    )

    assert (refused["status"], refused["error"]) == ("FAILED", "InvalidPlan")
    assert f"plan.registries: {users} (db) is not tagged as managed by envbuild" in refused["cause"]
    assert full_listing(emulator) == before


def test_a_removal_plan_for_an_environment_that_has_no_record_is_refused(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    other = foreign_app(emulator)
    before = full_listing(emulator)
    plan = {"environment": "ghost", "registries": [other["registry"]]}

    described, _ = run_teardown(emulator, {"plan": plan})

    assert (described["status"], described["error"]) == ("FAILED", "InvalidPlan")
    assert "no environment record for 'ghost'" in described["cause"]
    assert full_listing(emulator) == before


#: A step in each poll loop (right after its Wait state): Stop lands while the execution waits.
BUILD_POLLS = ["CheckNamespaceOperationFunction", "CheckServicesFunction"]
#: (The emulator's ECS services are INACTIVE as soon as deleted: "Check ECS Services" is never
#: entered, so it is not in the list.)
TEARDOWN_POLLS = ["TeardownCheckTasksFunction", "TeardownCheckOperationsFunction"]


@pytest.mark.parametrize("function", BUILD_POLLS)
def test_a_build_stopped_while_it_waits_leaves_no_lock_and_a_rerun_and_teardown_recover(
    emulator: Any, workshop_spec: dict[str, Any], function: str
) -> None:
    before = full_listing(emulator)
    gate = emulator.dispatcher.hold(function)
    arn = emulator.start_build(workshop_spec)
    assert gate.entered.wait(120)
    stopped(emulator, arn, gate)
    emulator.dispatcher.hold(function).release()  # later invocations pass

    rerun, _ = run_build(emulator, workshop_spec)  # the stopped build held nothing
    assert rerun["status"] == "SUCCEEDED", rerun.get("cause")
    described, _ = run_teardown(emulator, {**workshop_spec, **OPTIONS})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert full_listing(emulator) == before
    assert items(emulator, LOCKS) == []
    assert items(emulator, RECORDS) == []


@pytest.mark.parametrize("function", TEARDOWN_POLLS)
def test_a_teardown_stopped_while_it_waits_leaves_no_lock_and_a_second_one_finishes(
    emulator: Any, workshop_spec: dict[str, Any], function: str
) -> None:
    before = full_listing(emulator)
    from tests.workflow.test_teardown_paths import with_static_instance

    spec = with_static_instance(workshop_spec)  # so every wait is entered
    built(emulator, spec)
    gate = emulator.dispatcher.hold(function)
    arn = emulator.start_teardown({**spec, **OPTIONS})
    assert gate.entered.wait(120)
    stopped(emulator, arn, gate)
    emulator.dispatcher.hold(function).release()

    described, _ = run_teardown(emulator, {**spec, **OPTIONS})

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert full_listing(emulator) == before
    assert items(emulator, LOCKS) == []
    assert items(emulator, RECORDS) == []


def rollback_input(emulator: Any, workshop_spec: dict[str, Any]) -> dict[str, Any]:
    """The input of a failed build's rollback, as the console's "New execution" repeats it."""
    emulator.dispatcher.fail_next("CreateServicesFunction", "RuntimeError", times=1)
    failed, _ = run_build(emulator, workshop_spec)
    assert failed["status"] == "FAILED"
    sfn = emulator.client("stepfunctions")
    (child,) = sfn.list_executions(stateMachineArn=emulator.teardown_state_machine_arn)[
        "executions"
    ]
    assert len(child["name"]) <= 80
    return dict(json.loads(sfn.describe_execution(executionArn=child["executionArn"])["input"]))


def test_no_teardown_input_gets_around_the_lock_of_a_running_build(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    repeated = rollback_input(emulator, workshop_spec)
    first, _ = run_build(emulator, workshop_spec)  # the build that made the environment
    assert first["status"] == "SUCCEEDED", first.get("cause")
    gate = emulator.dispatcher.hold("CheckServicesFunction")
    running = emulator.start_build({**workshop_spec, "services": workshop_spec["services"][:2]})
    assert gate.entered.wait(120)
    before = full_listing(emulator)
    attempts = {
        "createdBy": {**workshop_spec, "createdBy": first["executionArn"]},
        "startedBy": {**workshop_spec, "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": running},
        "plan": {"plan": {"environment": "workshop", "logGroups": ["/ecs/workshop_web"]}},
        "repeated-rollback": repeated,
    }

    outcomes = {key: run_teardown(emulator, document)[0] for key, document in attempts.items()}

    for key, described in outcomes.items():
        assert (described["status"], described.get("error")) == ("FAILED", "EnvironmentBusy"), key
        assert f"held by a build ({running}" in described["cause"], key
    assert full_listing(emulator) == before
    gate.release()
    emulator.dispatcher.hold("CheckServicesFunction").release()
    assert emulator.wait(running)["status"] == "SUCCEEDED"
    assert items(emulator, LOCKS) == []


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ([1, 2], "must be a JSON object"),
        ("hello", "must be a JSON object"),
        (None, "must be a JSON object"),
        ({"plan": "everything"}, "plan must be a JSON object"),
        ({"plan": {"ecsServices": ["web-service"]}}, "plan.environment is required"),
    ],
    ids=["array", "string", "null", "plan-string", "plan-without-environment"],
)
def test_a_teardown_input_that_is_not_a_teardown_is_refused_naming_the_problem(
    emulator: Any, workshop_spec: dict[str, Any], document: Any, fragment: str
) -> None:
    built(emulator, workshop_spec)
    before = full_listing(emulator)

    arn = start(emulator, emulator.teardown_state_machine_arn, document)
    described = emulator.wait(arn)

    assert (described["status"], described["error"]) == ("FAILED", "InvalidPlan")
    assert fragment in described["cause"]
    assert states_entered(emulator.history(arn)) == [
        "Plan Only?",
        "Acquire Lock",
        "Teardown Refused",
    ]
    assert full_listing(emulator) == before
    assert items(emulator, LOCKS) == []


def test_a_build_stopped_while_its_rollback_runs_leaves_the_environment_to_the_rollback(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """An adversarial pass: the build was stopped during its rollback, a new build took the lock
    over, and the still-running rollback removed what the new build had adopted. (On AWS a .sync
    child may be stopped with its parent; the emulator keeps it running, the harder case.)"""
    before = full_listing(emulator)
    emulator.dispatcher.fail_next("CreateServicesFunction", "RuntimeError", times=1)
    gate = emulator.dispatcher.hold("TeardownScaleServicesFunction")
    build = emulator.start_build(workshop_spec)
    assert gate.entered.wait(120)  # the rollback runs, in its first removal step
    emulator.client("stepfunctions").stop_execution(executionArn=build)
    assert emulator.wait(build)["status"] == "ABORTED"  # the child rollback still runs

    second, _ = run_build(emulator, workshop_spec)

    assert (second["status"], second["error"]) == ("FAILED", "EnvironmentBusy")
    assert "its rollback or prune" in second["cause"]
    assert "-rollback-" in second["cause"]
    gate.release()
    emulator.dispatcher.hold("TeardownScaleServicesFunction").release()
    sfn = emulator.client("stepfunctions")
    (child,) = sfn.list_executions(stateMachineArn=emulator.teardown_state_machine_arn)[
        "executions"
    ]
    assert emulator.wait(child["executionArn"])["status"] == "SUCCEEDED"
    third, _ = run_build(emulator, workshop_spec)  # the rollback ended: the lock is free to take
    assert third["status"] == "SUCCEEDED", third.get("cause")
    described, _ = run_teardown(emulator, {**workshop_spec, **OPTIONS})
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert full_listing(emulator) == before
