"""A build that fails while Cloud Map is still creating its namespace leaves nothing behind
(issue 15, item 2).

CreatePrivateDnsNamespace only submits an operation; the namespace and its Route 53 hosted zone
appear about a minute later, tagged for the build, whether or not the build is still running.
A rollback that plans before then finds nothing, and the namespace appears afterwards. Each test
fails the build at a different point of that minute, then lets emulated time run on ten minutes
past the end of the build (``Emulator.advance``: AWS's time does not stop with the execution) and
reads the account through the APIs, as a user would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from envbuild.cli import rollback_outcome
from tests.conftest import REPO, fill
from tests.iam_proof import SessionRecording
from tests.workflow.helpers import account_snapshot, entered, run_build, states_entered

TEN_MINUTES = 600
IN_FLIGHT = ["SUBMITTED", "PENDING"]


def namespace_operations(emulator: Any, statuses: list[str] | None = None) -> list[str]:
    """Ids of the account's CREATE_NAMESPACE operations (optionally: in these statuses)."""
    filters: list[dict[str, Any]] = [
        {"Name": "TYPE", "Values": ["CREATE_NAMESPACE"], "Condition": "EQ"}
    ]
    if statuses:
        filters.append({"Name": "STATUS", "Values": statuses, "Condition": "IN"})
    sd = emulator.client("servicediscovery")
    return [op["Id"] for op in sd.list_operations(Filters=filters)["Operations"]]


def nothing_left(emulator: Any, before: dict[str, Any]) -> None:
    """Ten emulated minutes later: no namespace, hosted zone or registry (nor anything else the
    build made) that was not there before, and no namespace operation still running."""
    emulator.advance(TEN_MINUTES)
    after = account_snapshot(emulator)
    assert after["namespaces"] == before["namespaces"], "a namespace appeared after the build"
    assert after["hosted_zones"] == before["hosted_zones"], "its hosted zone was left behind"
    assert after["registries"] == before["registries"]
    assert after == before
    assert namespace_operations(emulator, IN_FLIGHT) == []


def workshop(emulator: Any) -> dict[str, Any]:
    text = (REPO / "events" / "workshop.json").read_text()
    return dict(json.loads(fill(text, emulator.prerequisites)))


def waited_for_namespace_operations(history: list[dict[str, Any]]) -> None:
    """The rollback waited for the namespace operations, then removed the namespace."""
    names = states_entered(history)
    assert "Find Namespace Operations In Flight" in names
    assert names.index("Find Namespace Operations In Flight") < names.index("Roll Back")
    assert "namespace workshop.local" in (rollback_outcome(history) or "")


def test_the_task_definition_branch_failing_while_the_namespace_is_created_leaves_nothing(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    before = account_snapshot(emulator)
    emulator.dispatcher.fail_next("RegisterTaskDefinitionsFunction", "RuntimeError", times=100)

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "RuntimeError"  # the build's own Error, not the rollback's
    assert "injected crash of RegisterTaskDefinitionsFunction" in described["cause"]
    assert len(namespace_operations(emulator)) == 1  # the namespace had been requested
    nothing_left(emulator, before)
    waited_for_namespace_operations(history)


def test_create_namespace_crashing_after_its_call_leaves_nothing(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    # The handler's CreatePrivateDnsNamespace call is made, then the invocation fails: the
    # operation id never reaches the execution's state.
    before = account_snapshot(emulator)
    emulator.dispatcher.fail_next(
        "CreateNamespaceFunction", "RuntimeError", times=100, after_calls=True
    )

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "RuntimeError"
    assert entered(history, "Namespace Ready?") == []  # the state never knew the operation
    assert len(namespace_operations(emulator)) == 1
    nothing_left(emulator, before)
    waited_for_namespace_operations(history)


def test_a_create_namespace_invocation_still_running_when_the_parallel_fails_is_waited_for(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    # Create Namespace takes seconds of real time before its call (it now runs before the
    # Parallel, issue 18's pipelined build: the task-definition branch needs its operation), then
    # the task-definition branch fails at once while the namespace operation runs; the failure
    # path's 300 s Wait and its look for namespace operations in flight still find it.
    before = account_snapshot(emulator)
    resolve = emulator.dispatcher.resolve_handler

    def slow_create_namespace(function: Any) -> Any:
        handler = resolve(function)
        if function.logical_id != "CreateNamespaceFunction":
            return handler

        def slow(event: dict[str, Any], context: Any) -> Any:
            time.sleep(3)
            return handler(event, context)

        return slow

    emulator.dispatcher.resolve_handler = slow_create_namespace
    emulator.dispatcher.fail_next("RegisterTaskDefinitionsFunction", "RuntimeError", times=100)

    described, history = run_build(emulator, workshop_spec)

    assert described["error"] == "RuntimeError"
    assert len(namespace_operations(emulator)) == 1
    nothing_left(emulator, before)
    waited_for_namespace_operations(history)


@pytest.fixture
def slow_cloud_map(
    request: pytest.FixtureRequest, iam_recording: SessionRecording
) -> Iterator[Any]:
    """An emulated account whose namespace operations take ``request.param`` seconds (default
    420: longer than the build's poll allows, template defaults 50 s then every 5 s, 60 checks,
    about 345 s)."""
    from envbuild_emulator.emulator import Emulator
    from envbuild_emulator.models.world import Latencies

    seconds = float(getattr(request, "param", 420.0))
    with Emulator(time_scale=0.0, latencies=Latencies(namespace_operation_seconds=seconds)) as emu:
        yield emu
        iam_recording.calls.merge(emu.aws_faults.function_calls)


def test_a_namespace_poll_that_times_out_leaves_nothing(slow_cloud_map: Any) -> None:
    emulator = slow_cloud_map
    before = account_snapshot(emulator)

    described, history = run_build(emulator, workshop(emulator))

    assert described["status"] == "FAILED"
    assert described["error"] == "NamespaceOperationTimedOut"
    assert len(entered(history, "Check Namespace Operation")) == 60
    nothing_left(emulator, before)
    waited_for_namespace_operations(history)


@pytest.mark.parametrize("slow_cloud_map", [450.0], indirect=True)
def test_the_rollback_waits_for_a_namespace_operation_still_running_after_the_grace_period(
    slow_cloud_map: Any,
) -> None:
    # The task-definition branch fails at once; Cloud Map needs 450 s, so the operation is still
    # running after the 300 s the failure path gives the stopped branch's Lambda: the rollback
    # polls it until it ends, then removes the namespace it created.
    emulator = slow_cloud_map
    before = account_snapshot(emulator)
    emulator.dispatcher.fail_next("RegisterTaskDefinitionsFunction", "RuntimeError", times=100)

    described, history = run_build(emulator, workshop(emulator))

    assert described["error"] == "RuntimeError"
    checks = entered(history, "Check Namespace Operations In Flight")
    # about (450 - 300) / 5, fewer when the stopped namespace branch's 50 s Wait had already
    # moved the Parallel's emulated time (docs/aws-fidelity.md, per-branch timelines); within
    # the bound of 60 either way
    assert 10 <= len(checks) < 60
    nothing_left(emulator, before)
    waited_for_namespace_operations(history)


def test_the_failure_path_waits_out_every_lambda_of_the_interrupted_parallel() -> None:
    """ "Wait For Interrupted Steps" lasts at least the longest timeout of the functions the
    Parallel's branches invoke: a stopped branch's invocation has ended before the rollback
    looks (template.yaml: Globals Timeout, or the function's own)."""
    from envbuild_emulator.template import load_yaml

    template = load_yaml(REPO / "template.yaml")
    default = template["Globals"]["Function"]["Timeout"]
    asl = json.loads((REPO / "statemachine" / "build_environment.asl.json").read_text())
    states = asl["States"]
    parallel = states["Prepare Namespace And Task Definitions"]

    def resources(branch_states: dict[str, Any]) -> list[str]:
        found = []
        for state in branch_states.values():
            if "Resource" in state:
                found.append(state["Resource"])
            for inner in [*state.get("Branches", []), state.get("ItemProcessor") or {}]:
                found += resources(inner.get("States", {}))
        return found

    # Create Namespace runs before the Parallel and its Catch goes to the same Wait
    assert states["Create Namespace"]["Catch"][0]["Next"] == "Wait For Interrupted Steps"
    placeholders = {r for b in parallel["Branches"] for r in resources(b["States"])}
    placeholders.add(states["Create Namespace"]["Resource"])
    functions = sorted(p.removeprefix("${").removesuffix("Arn}") for p in placeholders)
    assert "CreateNamespaceFunction" in functions
    assert "RegisterTaskDefinitionsFunction" in functions
    timeouts = {
        name: template["Resources"][name]["Properties"].get("Timeout", default)
        for name in functions
    }
    assert states["Wait For Interrupted Steps"]["Seconds"] >= max(timeouts.values()), timeouts
