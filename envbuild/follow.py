"""Following an execution: one line per state as it ends, the same for every way of running.

`envbuild run` on the emulator, `envbuild run --stack-name` on a deployed stack and `envbuild watch`
all print through `follow`. Polling is bounded: it stops at the execution's own timeout (the
definition's TimeoutSeconds, or DEFAULT_EXECUTION_SECONDS) plus a margin, counted from the
execution's start, and then says how to attach again.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from envbuild.report import step_warnings
from envbuild_emulator.emulator import execution_history

#: How long to follow an execution whose definition sets no TimeoutSeconds (the teardown's loops
#: are bounded by their attempts; this is only the CLI's own bound).
DEFAULT_EXECUTION_SECONDS = 7200
DEADLINE_MARGIN_SECONDS = 300


@dataclass(frozen=True)
class Clock:
    """When an event happened, in seconds since the execution's start, and what those seconds
    are (one format for every command, labelled once at the top of the progress)."""

    seconds: Callable[[Mapping[str, Any]], float]
    label: str


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


def since_start(started: datetime, label: str = "execution time") -> Clock:
    """Events by their own timestamp relative to the execution's start (true on replay)."""

    def seconds(event: Mapping[str, Any]) -> float:
        stamp = event.get("timestamp")
        return max((stamp - started).total_seconds(), 0.0) if isinstance(stamp, datetime) else 0.0

    return Clock(seconds, label)


def stamp(seconds: float) -> str:
    """The one time format of the progress: seconds since the start, e.g. " 125.0s"."""
    return f"{seconds:6.1f}s"


def poll_states(definition: Mapping[str, Any]) -> dict[str, str]:
    """The Task states a Wait state loops back to (a poll loop), each with its ResultPath key
    ("Check Services" -> "deployment"), in the definition and its branches."""
    found: dict[str, str] = {}
    states = definition.get("States", {})
    for state in states.values():
        if state.get("Type") == "Wait" and state.get("Next") in states:
            target = states[state["Next"]]
            if target.get("Type") == "Task":
                found[state["Next"]] = str(target.get("ResultPath") or "$").rsplit(".", 1)[-1]
        processor = state.get("ItemProcessor") or state.get("Iterator")
        for inner in [*state.get("Branches", []), *([processor] if processor else [])]:
            found |= poll_states(inner)
    return found


def scopes(definition: Mapping[str, Any], found: dict[str, int] | None = None) -> dict[str, int]:
    """Each state's scope: the States of the definition, of a branch or of a Map's processor
    (a poll loop ends when a state of its own scope is entered; a parallel branch goes on)."""
    found = {} if found is None else found
    scope = len(set(found.values())) + 1
    for name in definition.get("States", {}):
        found[name] = scope
    for state in definition.get("States", {}).values():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        for inner in [*state.get("Branches", []), *([processor] if processor else [])]:
            scopes(inner, found)
    return found


def wait_states(definition: Mapping[str, Any]) -> set[str]:
    names = set()
    for name, state in definition.get("States", {}).items():
        if state.get("Type") == "Wait":
            names.add(name)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        for inner in [*state.get("Branches", []), *([processor] if processor else [])]:
            names |= wait_states(inner)
    return names


_SERVICE = re.compile(
    r"(?P<name>[A-Za-z0-9_.-]+): (?P<running>\d+)/(?P<desired>\d+) tasks running"
    r"(?:(?P<unread> \(Cloud Map read once they all run\))|, "
    r"(?P<registered>\d+)/(?P<expected>\d+) registered in Cloud Map"
    r"(?P<unhealthy>, not HEALTHY: .*?)?(?=; [A-Za-z0-9_.-]+: \d+/|,| \(last event|$))"
)


def service_counts(result: Mapping[str, Any]) -> str:
    """Check Services' result as one line of per-service counts: running / registered / healthy
    of desired; a service that is ready says so."""
    message = str(result.get("message") or "")
    shown: dict[str, str] = {}
    for match in _SERVICE.finditer(message):
        desired, expected = match["desired"], match["expected"]
        if match["unread"]:  # Check Services reads Cloud Map once the tasks all run
            shown[match["name"]] = f"{match['name']} {match['running']}/{desired} running"
            continue
        registered = int(match["registered"])
        unhealthy = match["unhealthy"] or ""
        healthy = registered - (unhealthy.count(") ") + unhealthy.rstrip().endswith(")"))
        healthy = max(healthy, 0) if unhealthy else registered
        shown[match["name"]] = (
            f"{match['name']} {match['running']}/{desired} running,"
            f" {registered}/{expected} registered, {healthy}/{expected} healthy"
        )
    names = list(result.get("actions") or {}) or list(shown)
    return " · ".join(shown.get(name, f"{name} ready") for name in names)


def poll_text(state: str, result: Any) -> str:
    """What a poll's result says, without what changes on every poll (its attempt number)."""
    if not isinstance(result, Mapping):
        return ""
    if state == "Check Services" or "actions" in result:
        return service_counts(result)
    if result.get("status"):
        return str(result["status"])
    pending = result.get("pending")
    if isinstance(pending, list):
        return f"{len(pending)} pending" if pending else "done"
    return "done" if result.get("done") else ""


class Progress:
    """Renders history events as progress, the same rules for every command.

    One line per state as it ends (✓, or ✗ in red when it failed: a failed step is never
    followed by a ✓ of the same step). A poll loop (a Wait state and the Task it loops back to)
    is one line: on a terminal it updates in place (rich's live view); otherwise it is printed
    only when what it reports changes. NO_COLOR is respected (rich)."""

    def __init__(
        self, definition: Mapping[str, Any], out: TextIO, clock: Clock, live: bool | None = None
    ) -> None:
        self.per_item = iteration_states(definition)
        self.units = map_units(definition)
        self.polls = poll_states(definition)
        self.waits = wait_states(definition)
        self.scopes = scopes(definition)
        self.clock = clock
        self.iterations = 0
        self.live_view = out.isatty() if live is None else live
        self.console = Console(
            file=out,
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=True,
            force_terminal=True if live else None,
        )
        self.entered: str = ""  # the Task state last entered (what a failure belongs to)
        self.failed: dict[str, str] = {}  # state -> error of its last attempt
        self.polling: dict[str, tuple[int, str, float]] = {}  # state -> (checks, text, at)
        self.printed: dict[str, str] = {}  # state -> the poll text last printed (no TTY)
        self.live: Live | None = None
        if self.live_view:
            self.live = Live(Text(""), console=self.console, auto_refresh=False, transient=True)
            self.live.start()

    # -- output
    def line(self, at: float, mark: str, text: str, style: str = "") -> None:
        rendered = Text(f"  {stamp(at)}  ")
        rendered.append(f"{mark} {text}", style=style)
        self.console.print(rendered)

    def refresh(self) -> None:
        if self.live is None:
            return
        lines = Text("\n").join(
            Text(
                f"  {stamp(at)}  … {state} (check {checks}){': ' + text if text else ''}",
                no_wrap=True,
                overflow="ellipsis",
            )
            for state, (checks, text, at) in self.polling.items()
        )
        self.live.update(lines, refresh=True)

    def end_poll(self, state: str) -> None:
        checks, text, at = self.polling.pop(state)
        self.refresh()  # the live line goes before its final line is printed
        if self.printed.pop(state, None) == text:
            text = ""  # said on the line just above: no repeat
        self.line(
            at, "✓", f"{state} ({counted(checks, 'checks')}){': ' + text if text else ''}", "green"
        )

    def poll(self, state: str, at: float, output: Any) -> None:
        checks, _text, _at = self.polling.get(state, (0, "", at))
        key = self.polls[state]
        result = output.get(key) if isinstance(output, Mapping) and key != "$" else output
        text = poll_text(state, result)
        self.polling[state] = (checks + 1, text, at)
        if self.live is not None:
            self.refresh()
        elif self.printed.get(state) != text:
            self.printed[state] = text
            self.line(at, "…", f"{state}{': ' + text if text else ''}", "dim")

    def close(self) -> None:
        for state in list(self.polling):
            self.end_poll(state)
        if self.live is not None:
            self.live.stop()
            self.live = None

    # -- events
    def show(self, event: Mapping[str, Any]) -> None:
        kind = event["type"]
        entered = (event.get("stateEnteredEventDetails") or {}).get("name", "")
        exited = (event.get("stateExitedEventDetails") or {}).get("name", "")
        at = self.clock.seconds(event)
        if kind.endswith("StateEntered") and kind != "ChoiceStateEntered":
            scope = self.scopes.get(entered)
            for state in [s for s in self.polling if s != entered and entered not in self.waits]:
                if self.scopes.get(state) == scope:
                    self.end_poll(state)  # its loop went on: its last check was the last
        if kind == "TaskStateEntered":
            self.entered = entered
            self.failed.pop(entered, None)
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled") and self.entered in self.failed:
            error = self.failed.pop(self.entered)
            self.line(at, "↻", f"{self.entered}: {error}, retrying", "yellow")
        elif kind in ("LambdaFunctionSucceeded", "TaskSucceeded") and step_warnings(event):
            for warning in step_warnings(event):
                self.line(at, "⚠", f"{self.entered}: {warning}", "yellow")
        elif kind == "MapIterationSucceeded":
            self.iterations += 1
        elif kind == "MapStateExited":
            unit = self.units.get(exited, "items")
            self.line(at, "✓", f"{exited} ({counted(self.iterations, unit)})", "green")
            self.iterations = 0
        elif kind == "TaskStateExited" and exited in self.failed:
            error = self.failed.pop(exited)
            if exited in self.polling:  # the loop's line ends failed, on one line
                checks = self.polling.pop(exited)[0] + 1
                self.printed.pop(exited, None)
                self.refresh()
                self.line(at, "✗", f"{exited} ({counted(checks, 'checks')}): {error}", "bold red")
            else:
                self.line(at, "✗", f"{exited}: {error}", "bold red")
        elif kind == "TaskStateExited" and exited in self.polls:
            output = json_or_none((event.get("stateExitedEventDetails") or {}).get("output"))
            self.poll(exited, at, output)
        elif kind == "TaskStateExited" and exited not in self.per_item:
            self.line(at, "✓", exited, "green")
        elif kind in (
            "TaskFailed",
            "LambdaFunctionFailed",
            "TaskTimedOut",
            "LambdaFunctionTimedOut",
        ):
            details = (
                event.get("lambdaFunctionFailedEventDetails")
                or event.get("taskFailedEventDetails")
                or event.get("lambdaFunctionTimedOutEventDetails")
                or event.get("taskTimedOutEventDetails")
                or {}
            )
            self.failed[self.entered] = str(details.get("error", "failed"))
        elif kind == "FailStateEntered":
            self.line(at, "✗", entered, "bold red")


def json_or_none(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return None


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
    out.write(f"  (times: seconds since the start, {clock.label})\n")
    progress = Progress(definition, out, clock)
    give_up = time.monotonic() + deadline_seconds(definition)
    seen = 0
    try:
        while True:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            events = execution_history(sfn, execution_arn)
            for event in events[seen:]:
                progress.show(event)
            seen = len(events)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > give_up:
                raise StillRunning(execution_arn)
            out.flush()
            time.sleep(polling.interval)
    finally:
        progress.close()
        out.flush()
