"""Issue 15 item 6: every Lambda Task's TimeoutSeconds against its function's Timeout.

The function must time out first: its own timeout ends the invocation (Step Functions sees
``Sandbox.Timedout`` and retries a fresh one), while a Task timeout shorter than the function's
would leave the first invocation running next to its retry. The Task's TimeoutSeconds is the
function's Timeout plus a margin for the invocation's overhead and a cold start's INIT phase
(at most 10 s: "Lambda execution environment lifecycle", Init phase, AWS Lambda Developer Guide,
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_template import ROOT, load_template

#: seconds a Task allows beyond its function's Timeout (INIT: up to 10 s; invoke overhead)
MARGIN = 15


def _states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _states(processor["States"])


def lambda_tasks() -> list[tuple[str, str, int, int]]:
    """(ASL file, state, the function's logical id, the Task's TimeoutSeconds) per Lambda Task."""
    template = load_template()
    found = []
    for path in sorted((ROOT / "statemachine").glob("*.asl.json")):
        for name, state in _states(json.loads(path.read_text(encoding="utf-8"))["States"]):
            if state["Type"] != "Task":
                continue
            match = re.fullmatch(r"\$\{(\w+Function)Arn\}", str(state["Resource"]))
            if match is None:
                continue  # a service integration (Step Functions, EventBridge, DynamoDB)
            assert match.group(1) in template["Resources"], (path.name, name)
            found.append((path.name, name, match.group(1), int(state["TimeoutSeconds"])))
    return found


def function_timeout(logical_id: str) -> int:
    template = load_template()
    properties = template["Resources"][logical_id]["Properties"]
    return int(properties.get("Timeout", template["Globals"]["Function"]["Timeout"]))


TASKS = lambda_tasks()


def test_every_lambda_task_is_found() -> None:
    assert len(TASKS) >= 25


@pytest.mark.parametrize(("asl", "state", "function", "task_timeout"), TASKS)
def test_a_task_outlasts_its_function_by_the_margin(
    asl: str, state: str, function: str, task_timeout: int
) -> None:
    timeout = function_timeout(function)
    assert task_timeout >= timeout + MARGIN, (
        f"{asl} {state}: TimeoutSeconds {task_timeout} < {function} Timeout {timeout} + {MARGIN}"
    )
    # and not far beyond it: the Task's timeout is the function's, with the margin
    assert task_timeout <= timeout + 2 * MARGIN, (
        f"{asl} {state}: TimeoutSeconds {task_timeout} leaves {function} only {timeout} s"
    )
