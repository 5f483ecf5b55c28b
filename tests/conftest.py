"""Shared fixtures: an emulated AWS account (moto, in-process, clock scale 0) with envbuild deployed.

Every emulator's record of the AWS calls each function made is merged into the session's
``SessionRecording`` (tests/iam_proof.py); the tests marked ``iam_proof`` run after all others
and check template.yaml's policies against it.

With pytest-xdist (``make pytest`` runs ``-n``), each worker records its own tests. After each
test a worker writes its recording (a pickle) and the test's node id to a directory the
controller made; an ``iam_proof`` test on any worker waits until every other test of the run has
finished on some worker, then checks the recordings of all workers merged. Items are dispatched
in collection order and the proof's are last, so a worker only waits once every other test has
been handed out; `make pytest` passes ``--maxschedchunk 1`` so that no other worker holds more
than two of them then.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envbuild_emulator.calls import resolve_requests_with
from tests.iam_proof import SessionRecording, resolve_request, resolved_figures

REPO = Path(__file__).resolve().parent.parent
RECORDING = pytest.StashKey[SessionRecording]()
#: The directory where xdist workers share their recordings (made by the controller).
SHARED = pytest.StashKey[Path]()
#: Node ids of this run's tests that are not iam_proof tests (after -k/-m), and, per worker,
#: how many of them it has written so far.
OTHERS = pytest.StashKey[set[str]]()
#: Whether this worker's recording changed since it last wrote it (written only then).
CHANGED = pytest.StashKey[bool]()
SHARED_KEY = "envbuild_iam_recordings"
#: An iam_proof test waits at most this long (wall clock) without any other test finishing.
WAIT_WITHOUT_PROGRESS_S = 900.0


def _worker_id(config: pytest.Config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RECORDING] = SessionRecording(
        node_id_arguments=any("::" in str(arg) for arg in config.args)
    )
    # Each recorded request keeps the ARNs, tags and condition context IAM authorizes it on.
    resolve_requests_with(resolve_request)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and SHARED_KEY in workerinput:
        config.stash[SHARED] = Path(workerinput[SHARED_KEY])
    elif workerinput is None and getattr(config.option, "dist", "no") != "no":
        config.stash[SHARED] = Path(tempfile.mkdtemp(prefix="envbuild-iam-"))


def pytest_unconfigure(config: pytest.Config) -> None:
    resolve_requests_with(None)
    if _worker_id(config) is None and SHARED in config.stash:
        shutil.rmtree(config.stash[SHARED], ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: tell each worker where the recordings are shared."""
    if SHARED in node.config.stash:
        node.workerinput[SHARED_KEY] = str(node.config.stash[SHARED])


def _share(config: pytest.Config, nodeid: str) -> None:
    """A worker writes its whole recording, then notes the test as finished (in that order: a
    reader that sees the note sees the test's calls)."""
    directory, worker = config.stash[SHARED], _worker_id(config)
    recording = config.stash[RECORDING]
    target = directory / f"{worker}.pickle"
    partial = directory / f".{worker}.pickle.tmp"
    if config.stash.get(CHANGED, True):
        partial.write_bytes(pickle.dumps(recording, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, target)
        config.stash[CHANGED] = False
    with (directory / f"{worker}.done").open("a") as done:
        done.write(nodeid + "\n")


def _shared_recordings(directory: Path) -> list[SessionRecording]:
    return [pickle.loads(path.read_bytes()) for path in sorted(directory.glob("*.pickle"))]  # noqa: S301 - written by this run's workers


def _finished(directory: Path) -> set[str]:
    done: set[str] = set()
    for path in directory.glob("*.done"):
        done.update(line for line in path.read_text().splitlines() if line)
    return done


def _merged(recordings: list[SessionRecording], node_id_arguments: bool) -> SessionRecording:
    merged = SessionRecording(node_id_arguments=node_id_arguments)
    for recording in recordings:
        merged.calls.merge(recording.calls)
        merged.collected |= recording.collected
        merged.deselected |= recording.deselected
        merged.passed |= recording.passed
        merged.not_passed.update(recording.not_passed)
    return merged


def _wait_for_all_workers(config: pytest.Config) -> SessionRecording:
    """On a worker: every other test of the run has finished (on any worker); their recordings
    merged. A test that never finishes (a crashed worker) leaves the recording partial."""
    directory, others = config.stash[SHARED], config.stash[OTHERS]
    own = config.stash[RECORDING]
    last_count, last_progress = -1, time.monotonic()
    while True:
        done = _finished(directory)  # cheap: the recordings are read once, at the end
        missing = others - done
        if not missing:
            return _merged(_shared_recordings(directory), own.node_id_arguments)
        if len(done) != last_count:
            last_count, last_progress = len(done), time.monotonic()
        elif time.monotonic() - last_progress > WAIT_WITHOUT_PROGRESS_S:
            merged = _merged([*_shared_recordings(directory), own], own.node_id_arguments)
            merged.not_passed.update(
                dict.fromkeys(sorted(missing)[:3], "did not finish on any worker")
            )
            return merged
        time.sleep(1.0)


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
    config.stash[OTHERS] = {i.nodeid for i in items if i.get_closest_marker("iam_proof") is None}
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
            item.config.stash[CHANGED] = True
        elif not report.passed:
            recording.not_passed[item.nodeid] = f"{report.when} {report.outcome}"
            item.config.stash[CHANGED] = True
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """On an xdist worker, after a test's teardown (its emulator's calls are merged by then)."""
    try:
        return (yield)
    finally:
        config = item.config
        shared = SHARED in config.stash and _worker_id(config) is not None
        if shared and item.nodeid in config.stash.get(OTHERS, set()):
            _share(config, item.nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: a worker's counts of generated bad specs (tests/property)."""
    from tests.property import conftest as bad_input

    output = getattr(node, "workeroutput", {})
    bad_input.BAD_SPECS.update(output.get("envbuild_bad_specs", {}))
    bad_input.MUTATION_KINDS.update(output.get("envbuild_mutation_kinds", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    if SHARED in config.stash and _worker_id(config) is None:
        # the controller does not collect, so tests/property/conftest.py is not its plugin
        from tests.property import conftest as bad_input

        bad_input.pytest_terminal_summary(terminalreporter)
    recording = config.stash[RECORDING]
    if SHARED in config.stash and _worker_id(config) is None:  # xdist controller: the workers'
        recording = _merged(_shared_recordings(config.stash[SHARED]), recording.node_id_arguments)
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
    config = request.config
    if SHARED in config.stash and _worker_id(config) is not None:
        return _wait_for_all_workers(config)
    return config.stash[RECORDING]


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[Any]:
    from envbuild_emulator.emulator import Emulator

    with Emulator(time_scale=0.0) as emu:
        yield emu
        request.config.stash[RECORDING].calls.merge(emu.aws_faults.function_calls)
        request.config.stash[CHANGED] = True


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
