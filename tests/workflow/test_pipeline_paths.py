"""The pipelined build (issue 18, steps/pipeline.py): one test per path of the loop "Register Task
Definitions And Create Services", on the real ASL in the emulator.

A small time budget per invocation (PIPELINE_BUDGET_SECONDS=5) makes twelve services take
several turns of the loop: the Parallel's branch registers about five task definitions while the
namespace operation runs (it would register all twelve in its 60 s), then each turn about five
more, creating each service as soon as its task definition is registered.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from envbuild_lambda.errors import AwsUnavailable
from envbuild_lambda.settings import get_settings
from tests.workflow.helpers import account_snapshot, entered, live_ecs_services, run_build
from tests.workflow.test_convergence_paths import environment_calls, mutating
from tests.workflow.test_scale_paths import many_services

pytestmark = [pytest.mark.e2e]

LOOP = "Register Task Definitions And Create Services"
N = 12


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Five seconds of work per invocation (the handlers read their settings once)."""
    monkeypatch.setenv("PIPELINE_BUDGET_SECONDS", "5")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def around_loop_turns(emulator: Any, wrap: Callable[[int, Any], Any]) -> None:
    """Each invocation of the loop (an event with ``pipeline``, not the Parallel's branch) runs
    ``wrap(turn, handler)(event, context)``; ``turn`` counts from 1."""
    resolve = emulator.dispatcher.resolve_handler
    turns = [0]
    lock = threading.Lock()

    def resolving(function: Any) -> Any:
        handler = resolve(function)
        if function.logical_id != "RegisterTaskDefinitionsFunction":
            return handler

        def invoke(event: dict[str, Any], context: Any) -> Any:
            if "pipeline" not in event:
                return handler(event, context)
            with lock:
                turns[0] += 1
                turn = turns[0]
            return wrap(turn, handler)(event, context)

        return invoke

    emulator.dispatcher.resolve_handler = resolving


def loop_turns(history: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(the loop's state before, after) for each turn that succeeded (its Lambda's input and
    result)."""
    by_id = {e["id"]: e for e in history}
    turns = []
    for event in history:
        if event["type"] != "LambdaFunctionSucceeded":
            continue
        scheduled = event  # Succeeded <- Started <- Scheduled
        while scheduled is not None and scheduled["type"] != "LambdaFunctionScheduled":
            scheduled = by_id.get(scheduled.get("previousEventId"))
        if scheduled is None:
            continue
        origin = json.loads(scheduled["lambdaFunctionScheduledEventDetails"]["input"])
        if "pipeline" in origin:
            result = json.loads(event["lambdaFunctionSucceededEventDetails"]["output"])
            turns.append((origin["pipeline"], result))
    return turns


def loop_outputs(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [after for _before, after in loop_turns(history)]


def revisions_per_family(emulator: Any, environment: str) -> dict[str, int]:
    ecs = emulator.client("ecs")
    counts: dict[str, int] = {}
    for arn in ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]:
        family = arn.rsplit("/", 1)[1].rsplit(":", 1)[0]
        if family.startswith(f"{environment}_"):
            counts[family] = counts.get(family, 0) + 1
    return counts


def ecs_rows(output: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["name"], r["action"]) for r in output["changes"] if r["kind"] == "ecsService"]


def test_the_loop_takes_several_turns_and_creates_each_service_after_its_task_definition(
    emulator: Any, small_budget: None
) -> None:
    spec = many_services(emulator, N)

    described, history = run_build(emulator, spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    turns = loop_outputs(history)
    assert len(entered(history, LOOP)) == len(turns) >= 2
    assert len(entered(history, "All Services Created?")) == len(turns) + 1
    assert [t["done"] for t in turns] == [False] * (len(turns) - 1) + [True]
    # every turn registered more task definitions and created the services they were for
    # (one whose revision came at the turn's deadline waits for the next): nothing waited for
    # the last registration
    registered = [len(t["taskDefinitions"]) for t in turns]
    assert registered == sorted(set(registered))
    assert registered[-1] == N
    done = [t["servicesDone"] for t in turns]
    assert done == sorted(set(done))  # each turn created services (in spec order)
    assert all(d <= r for d, r in zip(done, registered, strict=True))  # none before its revision
    assert done[-1] == N
    assert turns[-1]["invocation"] == len(turns) <= turns[-1]["maxInvocations"]
    # the Parallel's branch registered some while the namespace was created (within its
    # budget), and created no service: the registries did not exist yet
    first = loop_turns(history)[0][0]
    assert 0 < len(first["taskDefinitions"]) < N
    assert (first["servicesDone"], first["invocation"]) == (0, 0)

    cluster = emulator.prerequisites["CLUSTER_NAME"]
    assert len(live_ecs_services(emulator.client("ecs"), cluster)) == N
    assert revisions_per_family(emulator, spec["environment"]) == {
        f"{spec['environment']}_svc{i:03d}": 1 for i in range(N)
    }
    output = json.loads(described["output"])
    assert ecs_rows(output) == [(f"svc{i:03d}-service", "create") for i in range(N)]
    assert sum(emulator.throttling.throttled.values()) == 0  # paced at the ECS quotas


def test_a_lost_response_of_a_loop_turn_is_retried_without_duplicates(
    emulator: Any, small_budget: None
) -> None:
    # The first turn does its work, then its answer is lost (AwsUnavailable): the Retry runs it
    # again with the same input, which registers and creates nothing twice.
    def lose_first(turn: int, handler: Any) -> Any:
        def run(event: dict[str, Any], context: Any) -> Any:
            result = handler(event, context)
            if turn == 1:
                raise AwsUnavailable("the answer of the first turn was lost")
            return result

        return run

    around_loop_turns(emulator, lose_first)
    spec = many_services(emulator, N)

    described, history = run_build(emulator, spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    failed = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert len(failed) == 1
    assert "AwsUnavailable" in json.dumps(failed[0], default=str)
    assert revisions_per_family(emulator, spec["environment"]) == {
        f"{spec['environment']}_svc{i:03d}": 1 for i in range(N)
    }
    ecs = emulator.client("ecs")
    assert len(live_ecs_services(ecs, emulator.prerequisites["CLUSTER_NAME"])) == N
    # a service the lost turn created is still reported as created by this build
    assert ecs_rows(json.loads(described["output"])) == [
        (f"svc{i:03d}-service", "create") for i in range(N)
    ]


def test_a_failure_in_the_middle_of_the_loop_rolls_back_everything(
    emulator: Any, small_budget: None
) -> None:
    before = account_snapshot(emulator)

    def crash_second(turn: int, handler: Any) -> Any:
        def run(event: dict[str, Any], context: Any) -> Any:
            if turn >= 2:
                raise RuntimeError("injected crash of the second turn")
            return handler(event, context)

        return run

    around_loop_turns(emulator, crash_second)

    described, history = run_build(emulator, many_services(emulator, N))

    assert (described["status"], described["error"]) == ("FAILED", "RuntimeError")
    assert "injected crash of the second turn" in described["cause"]
    assert len(loop_outputs(history)) == 1  # the first turn had created services
    names = [e["stateEnteredEventDetails"]["name"] for e in history if "StateEntered" in e["type"]]
    assert names.index(LOOP) < names.index("Roll Back?") < names.index("Roll Back")
    assert "Create Services" not in names
    assert account_snapshot(emulator) == before


def test_stopping_the_build_in_the_loop_then_a_teardown_leaves_nothing(
    emulator: Any, small_budget: None
) -> None:
    before = account_snapshot(emulator)
    in_second_turn, go_on = threading.Event(), threading.Event()

    def hold_second(turn: int, handler: Any) -> Any:
        def run(event: dict[str, Any], context: Any) -> Any:
            if turn == 2:
                in_second_turn.set()
                go_on.wait(120)
            return handler(event, context)

        return run

    around_loop_turns(emulator, hold_second)
    spec = many_services(emulator, N)
    arn = emulator.start_build(spec)
    assert in_second_turn.wait(120)
    emulator.client("stepfunctions").stop_execution(executionArn=arn, cause="stopped by a user")
    go_on.set()  # the invocation in flight still runs to its end, as on AWS
    assert emulator.wait(arn)["status"] in ("ABORTED", "FAILED")
    ecs = emulator.client("ecs")
    assert live_ecs_services(ecs, emulator.prerequisites["CLUSTER_NAME"])  # services were made

    teardown = emulator.wait(
        emulator.start_teardown(
            {**spec, "deleteLogGroups": True, "deregisterTaskDefinitions": True}
        )
    )

    assert teardown["status"] == "SUCCEEDED", teardown.get("cause")
    assert account_snapshot(emulator) == before


def test_a_rerun_after_a_pipelined_build_changes_nothing(emulator: Any, small_budget: None) -> None:
    spec = many_services(emulator, N)
    first, _ = run_build(emulator, spec)
    assert first["status"] == "SUCCEEDED", first.get("cause")
    emulator.aws_faults.calls.clear()

    described, history = run_build(emulator, spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert not environment_calls(mutating(emulator))
    turns = loop_outputs(history)
    assert turns[-1]["done"]
    assert turns[-1]["servicesDone"] == N
    assert [row for row in ecs_rows(json.loads(described["output"])) if row[1] != "unchanged"] == []
