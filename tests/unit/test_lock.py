"""The environment lock: one live holder at a time, re-entrant for its holder, taken over from a
holder that no longer runs, released once, and a child teardown only under the lock its build
named it in."""

from __future__ import annotations

import json

import pytest

from envbuild_lambda.aws import Clients
from envbuild_lambda.errors import EnvironmentBusy, InvalidPlan
from envbuild_lambda.steps import lock

TABLE = "locks"


@pytest.fixture
def table(clients: Clients) -> str:
    clients.dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "environment", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "environment", "KeyType": "HASH"}],
    )
    return TABLE


@pytest.fixture
def machine(clients: Clients, monkeypatch: pytest.MonkeyPatch) -> str:
    """A state machine whose executions stay RUNNING until stopped: moto does not run them (a
    server-mode emulator earlier in the session may have switched execution on for the process)."""
    from moto.core.config import default_user_config

    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": False})
    return clients.stepfunctions.create_state_machine(
        name="envbuild-BuildEnvironmentStateMachine",
        definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]


def start(clients: Clients, machine: str, name: str) -> str:
    return clients.stepfunctions.start_execution(stateMachineArn=machine, name=name)["executionArn"]


def holder(clients: Clients, environment: str) -> str | None:
    item = clients.dynamodb.get_item(TableName=TABLE, Key={"environment": {"S": environment}}).get(
        "Item"
    )
    return item["executionArn"]["S"] if item else None


def test_a_second_execution_is_refused_with_the_running_holder_named(
    clients: Clients, table: str, machine: str
) -> None:
    first, second = start(clients, machine, "first"), start(clients, machine, "second")
    lock.acquire(clients, table, "workshop", first, 3600, now=1000)

    with pytest.raises(EnvironmentBusy) as raised:
        lock.acquire(clients, table, "workshop", second, 3600, now=1001, kind="teardown")
    assert f"held by a build ({first}, since 1970-01-01T00:16:40Z), which is RUNNING" in str(
        raised.value
    )
    assert holder(clients, "workshop") == first


def test_a_stopped_holder_holds_nothing_and_is_taken_over(
    clients: Clients, table: str, machine: str
) -> None:
    first, second = start(clients, machine, "first"), start(clients, machine, "second")
    lock.acquire(clients, table, "workshop", first, 3600, now=1000)
    clients.stepfunctions.stop_execution(executionArn=first)  # the console's "Stop execution"

    held = lock.acquire(clients, table, "workshop", second, 3600, now=1001)

    assert holder(clients, "workshop") == second
    assert held["tookOverFrom"] == first
    assert held["previousHolderStatus"] == "ABORTED"
    assert lock.release(clients, table, "workshop", first) is False  # its late release: harmless
    assert holder(clients, "workshop") == second


def test_a_holder_step_functions_does_not_know_holds_nothing(
    clients: Clients, table: str, machine: str
) -> None:
    gone = machine.replace(":stateMachine:", ":execution:") + ":deleted-long-ago"
    lock.acquire(clients, table, "workshop", gone, 3600, now=1000)
    second = start(clients, machine, "second")

    assert lock.acquire(clients, table, "workshop", second, 3600, now=1001)["tookOverFrom"] == gone


def test_other_environments_are_independent(clients: Clients, table: str, machine: str) -> None:
    first, second = start(clients, machine, "first"), start(clients, machine, "second")
    lock.acquire(clients, table, "workshop", first, 3600, now=1000)
    lock.acquire(clients, table, "staging", second, 3600, now=1000)
    assert (holder(clients, "workshop"), holder(clients, "staging")) == (first, second)


def test_the_holder_may_take_it_again_after_a_retry(
    clients: Clients, table: str, machine: str
) -> None:
    first = start(clients, machine, "first")
    lock.acquire(clients, table, "workshop", first, 3600, now=1000)
    held = lock.acquire(clients, table, "workshop", first, 3600, now=1005)
    assert held["expiresAt"] == "1970-01-01T01:16:45Z"


def test_an_expired_lock_is_taken_over_even_from_a_running_holder(
    clients: Clients, table: str, machine: str
) -> None:
    first, second = start(clients, machine, "first"), start(clients, machine, "second")
    lock.acquire(clients, table, "workshop", first, 60, now=1000)
    lock.acquire(clients, table, "workshop", second, 60, now=1061)
    assert holder(clients, "workshop") == second


def test_release_only_frees_the_holders_lock(clients: Clients, table: str, machine: str) -> None:
    first, second = start(clients, machine, "first"), start(clients, machine, "second")
    lock.acquire(clients, table, "workshop", first, 3600, now=1000)

    assert lock.release(clients, table, "workshop", second) is False
    assert holder(clients, "workshop") == first
    assert lock.release(clients, table, "workshop", first) is True
    assert holder(clients, "workshop") is None
    assert lock.release(clients, table, "workshop", first) is False  # twice is harmless


def name_child(clients: Clients, environment: str, child: str) -> None:
    """What the build's "Hand The Lock To The Rollback" state writes."""
    clients.dynamodb.update_item(
        TableName=TABLE,
        Key={"environment": {"S": environment}},
        UpdateExpression="SET child = :child",
        ExpressionAttributeValues={":child": {"S": child}},
    )


def test_the_child_the_build_named_runs_under_the_builds_lock(
    clients: Clients, table: str, machine: str
) -> None:
    build = start(clients, machine, "build")
    lock.acquire(clients, table, "workshop", build, 3600, now=1000)
    name_child(clients, "workshop", "workshop-rollback-0123456789ab")

    held = lock.acquire_for_teardown(
        clients, table, "workshop", "arn:child", "workshop-rollback-0123456789ab", build, 3600, 1001
    )

    assert held == {"environment": "workshop", "executionArn": build, "underParent": True}
    assert holder(clients, "workshop") == build


@pytest.mark.parametrize(
    ("name", "started_by_build", "stop_build"),
    [
        ("workshop-rollback-ffffffffffff", True, False),  # a name the build did not write
        ("workshop-rollback-0123456789ab", False, False),  # started by someone else
        ("workshop-rollback-0123456789ab", True, True),  # the build no longer runs
    ],
    ids=["other-name", "other-parent", "parent-stopped"],
)
def test_any_other_teardown_must_take_the_lock_itself(
    clients: Clients,
    table: str,
    machine: str,
    name: str,
    started_by_build: bool,
    stop_build: bool,
) -> None:
    build, other = start(clients, machine, "build"), start(clients, machine, "other")
    lock.acquire(clients, table, "workshop", build, 3600, now=1000)
    name_child(clients, "workshop", "workshop-rollback-0123456789ab")
    if stop_build:
        clients.stepfunctions.stop_execution(executionArn=build)
    teardown = start(clients, machine, "teardown")

    def attempt() -> dict[str, object]:
        return lock.acquire_for_teardown(
            clients,
            table,
            "workshop",
            teardown,
            name,
            build if started_by_build else other,
            3600,
            now=1001,
        )

    if stop_build:  # the build's lock is stale: the teardown takes it over, under its own name
        assert attempt()["executionArn"] == teardown
        assert holder(clients, "workshop") == teardown
    else:
        with pytest.raises(EnvironmentBusy, match="which is RUNNING"):
            attempt()
        assert holder(clients, "workshop") == build


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1, 2], "must be a JSON object"),
        ("hello", "must be a JSON object"),
        ({"plan": "everything"}, "plan must be a JSON object"),
        ({"plan": {"registries": []}}, "plan.environment is required"),
        ({"cluster": "c"}, "environment is required"),
        ({"environment": 42}, "environment is required"),
    ],
)
def test_a_teardown_input_that_names_no_environment_is_invalid(raw: object, message: str) -> None:
    with pytest.raises(InvalidPlan, match=message):
        lock.teardown_environment(raw)


def test_a_stopped_build_whose_rollback_still_runs_is_not_taken_over(
    clients: Clients, table: str, machine: str
) -> None:
    """An adversarial pass: the build was stopped while its rollback ran; a new build took the
    lock over and the rollback then removed what the new build had adopted."""
    build, rollback = start(clients, machine, "build"), start(clients, machine, "rollback")
    newcomer = start(clients, machine, "newcomer")
    lock.acquire(clients, table, "workshop", build, 3600, now=1000)
    clients.dynamodb.update_item(  # what "Hand The Lock To The Rollback" writes
        TableName=TABLE,
        Key={"environment": {"S": "workshop"}},
        UpdateExpression="SET child = :child, childArn = :arn",
        ExpressionAttributeValues={":child": {"S": "rollback"}, ":arn": {"S": rollback}},
    )
    clients.stepfunctions.stop_execution(executionArn=build)

    with pytest.raises(EnvironmentBusy, match=f"its rollback or prune {rollback} still runs"):
        lock.acquire(clients, table, "workshop", newcomer, 3600, now=1001)
    clients.stepfunctions.stop_execution(executionArn=rollback)
    assert (
        lock.acquire(clients, table, "workshop", newcomer, 3600, now=1002)["tookOverFrom"] == build
    )
