"""Following an execution: one line per state as it ends, the same for every way of running.

`envbuild run` on the emulator, `envbuild run --stack-name` on a deployed stack and `envbuild watch`
all print through `follow`. Polling is bounded: it stops at the execution's own timeout (the
definition's TimeoutSeconds, or DEFAULT_EXECUTION_SECONDS) plus a margin, counted from the
execution's start, and then says how to attach again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from envbuild_emulator.emulator import execution_history

#: How long to follow an execution whose definition sets no TimeoutSeconds (the teardown's loops
#: are bounded by their attempts; this is only the CLI's own bound).
DEFAULT_EXECUTION_SECONDS = 7200
DEADLINE_MARGIN_SECONDS = 300

#: A label for a history event, e.g. "t+  60s" (emulated clock) or "+12.3s" (since the start).
Clock = Callable[[Mapping[str, Any]], str]


class StillRunning(Exception):
    """The execution outlived the follow deadline (it keeps running; attach again later)."""


@dataclass(frozen=True)
class Polling:
    """How often to ask for the history. 0.05 s on the emulator; seconds on AWS (GetExecutionHistory
    and DescribeExecution are rate-limited per account)."""

    interval: float = 0.05


EMULATOR = Polling(0.05)
AWS = Polling(2.0)


def iteration_states(definition: Mapping[str, Any]) -> set[str]:
    """Names of the states that run once per item of a Map (shown as one line per Map)."""
    names: set[str] = set()
    for state in definition.get("States", {}).values():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            names |= set(processor.get("States", {}))
            names |= iteration_states(processor)
        for branch in state.get("Branches", []):
            names |= iteration_states(branch)
    return names


def map_units(definition: Mapping[str, Any]) -> dict[str, str]:
    """What each Map iterates over, from its ItemsPath ("$.batches" -> "batches")."""
    units: dict[str, str] = {}
    for name, state in definition.get("States", {}).items():
        if state.get("Type") == "Map":
            units[name] = str(state.get("ItemsPath", "$.items")).rsplit(".", 1)[-1] or "items"
        processor = state.get("ItemProcessor") or state.get("Iterator")
        for inner in [*state.get("Branches", []), *([processor] if processor else [])]:
            units |= map_units(inner)
    return units


def counted(count: int, unit: str) -> str:
    """ "3 services", "1 batch"."""
    if count != 1:
        return f"{count} {unit}"
    return f"1 {unit[:-2] if unit.endswith(('ches', 'shes', 'sses')) else unit.removesuffix('s')}"


def since_start(started: datetime) -> Clock:
    """Label events by their own timestamp relative to the execution's start (true on replay)."""

    def label(event: Mapping[str, Any]) -> str:
        stamp = event.get("timestamp")
        seconds = (stamp - started).total_seconds() if isinstance(stamp, datetime) else 0.0
        return f"+{max(seconds, 0.0):6.1f}s"

    return label


class Progress:
    """Renders history events as progress lines (the rules every command shares)."""

    def __init__(self, definition: Mapping[str, Any], out: TextIO, clock: Clock) -> None:
        self.per_item = iteration_states(definition)
        self.units = map_units(definition)
        self.out = out
        self.clock = clock
        self.iterations = 0

    def show(self, event: Mapping[str, Any]) -> None:
        kind = event["type"]
        entered = (event.get("stateEnteredEventDetails") or {}).get("name", "")
        exited = (event.get("stateExitedEventDetails") or {}).get("name", "")
        at = self.clock(event)
        if kind == "MapIterationSucceeded":
            self.iterations += 1
        elif kind == "MapStateExited":
            unit = self.units.get(exited, "items")
            self.out.write(f"  {at}  ✓ {exited} ({counted(self.iterations, unit)})\n")
            self.iterations = 0
        elif kind == "WaitStateEntered":
            self.out.write(f"  {at}  … {entered}\n")
        elif kind == "TaskStateExited" and exited not in self.per_item:
            self.out.write(f"  {at}  ✓ {exited}\n")
        elif kind in ("TaskFailed", "LambdaFunctionFailed"):
            details = (
                event.get("lambdaFunctionFailedEventDetails")
                or event.get("taskFailedEventDetails")
                or {}
            )
            self.out.write(f"  {at}  ✗ {details.get('error', 'failed')} (retried if retryable)\n")
        elif kind == "FailStateEntered":
            self.out.write(f"  {at}  ✗ {entered}\n")


def deadline_seconds(definition: Mapping[str, Any]) -> float:
    timeout = definition.get("TimeoutSeconds")
    seconds = timeout if isinstance(timeout, int) and timeout > 0 else DEFAULT_EXECUTION_SECONDS
    return float(seconds + DEADLINE_MARGIN_SECONDS)


def follow(
    sfn: Any,
    execution_arn: str,
    out: TextIO,
    clock: Clock,
    polling: Polling = EMULATOR,
) -> dict[str, Any]:
    """Print each state as it ends; return DescribeExecution once the execution has stopped.

    Raises StillRunning when the execution is still RUNNING past its own timeout plus a margin
    (wall clock, from when following began); the caller says how to attach again."""
    machine = sfn.describe_state_machine_for_execution(executionArn=execution_arn)
    definition = json.loads(machine["definition"])
    progress = Progress(definition, out, clock)
    give_up = time.monotonic() + deadline_seconds(definition)
    seen = 0
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        events = execution_history(sfn, execution_arn)
        for event in events[seen:]:
            progress.show(event)
        out.flush()
        seen = len(events)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > give_up:
            raise StillRunning(execution_arn)
        time.sleep(polling.interval)
