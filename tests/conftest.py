"""Shared fixtures: an emulated AWS account (moto, in-process, clock scale 0) with envbuild deployed.

Every emulator's record of the AWS calls each function made is merged into the session's
``SessionRecording`` (tests/iam_proof.py); the tests marked ``iam_proof`` run after all others
and check template.yaml's policies against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envbuild_emulator.calls import resolve_requests_with
from tests.iam_proof import SessionRecording, resolve_request, resolved_figures

REPO = Path(__file__).resolve().parent.parent
RECORDING = pytest.StashKey[SessionRecording]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RECORDING] = SessionRecording(
        node_id_arguments=any("::" in str(arg) for arg in config.args)
    )
    # Each recorded request keeps the ARNs, tags and condition context IAM authorizes it on.
    resolve_requests_with(resolve_request)


def pytest_unconfigure(config: pytest.Config) -> None:
    resolve_requests_with(None)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    """Note the workflow tests collected before -k/-m deselect any; then run the iam_proof tests
    last, after every test that records calls."""
    recording = config.stash[RECORDING]
    recording.collected |= {i.nodeid for i in items if recording.is_workflow(i.nodeid)}
    result = yield
    items.sort(key=lambda item: item.get_closest_marker("iam_proof") is not None)
    return result


def pytest_deselected(items: list[pytest.Item]) -> None:
    if not items:
        return
    recording = items[0].config.stash[RECORDING]
    recording.deselected |= {i.nodeid for i in items if recording.is_workflow(i.nodeid)}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    recording = item.config.stash[RECORDING]
    if recording.is_workflow(item.nodeid):
        if report.when == "call" and report.passed:
            recording.passed.add(item.nodeid)
        elif not report.passed:
            recording.not_passed[item.nodeid] = f"{report.when} {report.outcome}"
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    recording = terminalreporter.config.stash[RECORDING]
    required = recording.calls.required_actions()
    if not required:
        return
    reason = recording.incomplete_reason()
    terminalreporter.write_line(
        f"IAM proof: {sum(len(a) for a in required.values())} (function, IAM action) pairs "
        f"needed by the calls of {len(required)} functions; "
        + ("complete recording" if reason is None else f"partial recording ({reason})")
    )
    terminalreporter.write_line(
        f"IAM proof with resources: {resolved_figures(recording.calls.resolved())}"
    )


@pytest.fixture(scope="session")
def iam_recording(request: pytest.FixtureRequest) -> SessionRecording:
    return request.config.stash[RECORDING]


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[Any]:
    from envbuild_emulator.emulator import Emulator

    with Emulator(time_scale=0.0) as emu:
        yield emu
        request.config.stash[RECORDING].calls.merge(emu.aws_faults.function_calls)


def fill(text: str, variables: dict[str, str]) -> str:
    for key, value in variables.items():
        text = text.replace("${" + key + "}", value)
    return text


@pytest.fixture
def workshop_spec(emulator: Any) -> dict[str, Any]:
    """events/workshop.json with the emulator's prerequisites filled in."""
    return dict(
        json.loads(fill((REPO / "events" / "workshop.json").read_text(), emulator.prerequisites))
    )
