"""Shared fixtures: an emulated AWS account (moto, in-process, clock scale 0) with envbuild deployed.

Every emulator's record of the AWS calls each function made is merged into the session's
``SessionRecording`` (tests/iam_proof.py); the tests marked ``iam_proof`` run after all others
and check template.yaml's policies against it.

With pytest-xdist the tests run in several processes, each with its own recording. ``make pytest``
therefore runs in two phases: every test but the proof's on xdist workers, each process writing
its recording (a pickle) at the end of its session into the directory ``ENVBUILD_IAM_RECORDINGS``
names; then tests/test_iam_proof.py in one process, which checks the recordings found there,
merged. Without that variable (a plain ``pytest``) the proof checks this session's own recording.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envbuild_emulator.calls import resolve_requests_with
from tests.iam_proof import SessionRecording, resolve_request, resolved_figures

REPO = Path(__file__).resolve().parent.parent
RECORDING = pytest.StashKey[SessionRecording]()
#: A directory of recordings (one pickle per test process): written by a run of the other tests,
#: read by the proof's (``make pytest``).
RECORDINGS_DIR = "ENVBUILD_IAM_RECORDINGS"


def _process_name(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return "main" if workerinput is None else str(workerinput["workerid"])


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RECORDING] = SessionRecording(
        node_id_arguments=any("::" in str(arg) for arg in config.args)
    )
    # Each recorded request keeps the ARNs, tags and condition context IAM authorizes it on.
    resolve_requests_with(resolve_request)


def pytest_unconfigure(config: pytest.Config) -> None:
    resolve_requests_with(None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """With ENVBUILD_IAM_RECORDINGS set, a process that recorded calls writes its recording."""
    directory = os.environ.get(RECORDINGS_DIR)
    recording = session.config.stash[RECORDING]
    if not directory or not (recording.collected or recording.calls.by_function()):
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    partial = path / f".{_process_name(session.config)}.{os.getpid()}.tmp"
    partial.write_bytes(pickle.dumps(recording, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(partial, path / f"{_process_name(session.config)}.{os.getpid()}.pickle")


def recordings_from(directory: Path) -> SessionRecording | None:
    """The recordings of a directory merged (None if it has none)."""
    pickles = sorted(directory.glob("*.pickle"))
    if not pickles:
        return None
    merged = SessionRecording()
    for path in pickles:
        recording: SessionRecording = pickle.loads(path.read_bytes())  # noqa: S301 - written by this run's own test processes
        merged.calls.merge(recording.calls)
        merged.collected |= recording.collected
        merged.deselected |= recording.deselected
        merged.passed |= recording.passed
        merged.not_passed.update(recording.not_passed)
        merged.node_id_arguments |= recording.node_id_arguments
    return merged


def _proof_recording(config: pytest.Config) -> SessionRecording:
    """What the proof checks: the recordings of ENVBUILD_IAM_RECORDINGS when this session ran no
    workflow test itself (the proof's phase of ``make pytest``), else this session's own."""
    own = config.stash[RECORDING]
    directory = os.environ.get(RECORDINGS_DIR)
    if directory and not own.collected:
        shared = recordings_from(Path(directory))
        if shared is not None:
            return shared
    return own


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


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: a worker's counts of generated bad specs (tests/property)."""
    from tests.property import conftest as bad_input

    output = getattr(node, "workeroutput", {})
    bad_input.BAD_SPECS.update(output.get("envbuild_bad_specs", {}))
    bad_input.MUTATION_KINDS.update(output.get("envbuild_mutation_kinds", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    if getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput"):
        # an xdist controller does not collect: tests/property/conftest.py is not its plugin
        from tests.property import conftest as bad_input

        bad_input.pytest_terminal_summary(terminalreporter)
    recording = _proof_recording(config)
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
    return _proof_recording(request.config)


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
