"""Fixtures of the property suite: one emulated account for a whole module, a recorder of every AWS
call made through botocore, and the run's count of generated bad specs (printed at the end)."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client
import pytest

#: Bad specs generated this run, per property, and per mutation kind (all properties).
BAD_SPECS: Counter[str] = Counter()
MUTATION_KINDS: Counter[str] = Counter()

READ_ONLY_PREFIXES = ("Describe", "List", "Get", "Discover")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not BAD_SPECS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("bad-input suite")
    write(f"generated bad specs this run: {sum(BAD_SPECS.values())}")
    for name, count in sorted(BAD_SPECS.items()):
        write(f"  {count:6d}  {name}")
    write("mutations applied, by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(MUTATION_KINDS.items())))  # fmt: skip


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: its counts go to the controller, which prints the summary
    (tests/conftest.py, pytest_testnodedown)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["envbuild_bad_specs"] = dict(BAD_SPECS)
        workeroutput["envbuild_mutation_kinds"] = dict(MUTATION_KINDS)


@dataclass
class Call:
    service: str
    operation: str
    own: bool  # made by the test itself (its StartExecution), not by the workflow

    @property
    def mutating(self) -> bool:
        return not self.own and not self.operation.startswith(READ_ONLY_PREFIXES)


@dataclass
class CallRecorder:
    """Every botocore API call of the process, from any client, session or thread."""

    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _own_pending: int = 0

    def record(self, service: str, operation: str) -> None:
        with self._lock:
            own = operation == "StartExecution" and self._own_pending > 0
            if own:
                self._own_pending -= (
                    1  # only the one call; calls made while it runs are the workflow's
                )
            self.calls.append(Call(service, operation, own))

    @contextmanager
    def own_start_execution(self) -> Iterator[None]:
        with self._lock:
            self._own_pending += 1
        try:
            yield
        finally:
            with self._lock:
                self._own_pending = 0

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def mutating(self) -> list[str]:
        with self._lock:
            return [f"{c.service}:{c.operation}" for c in self.calls if c.mutating]


@pytest.fixture(scope="module")
def aws_calls() -> Iterator[CallRecorder]:
    """Patches BaseClient._make_api_call: every client of every session goes through it."""
    recorder = CallRecorder()
    original = botocore.client.BaseClient._make_api_call

    def recording(client: Any, operation_name: str, api_params: Any) -> Any:
        recorder.record(client.meta.service_model.service_name, operation_name)
        return original(client, operation_name, api_params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
        yield recorder


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[Any]:
    """One emulated account with envbuild deployed, for a whole property (starting one takes seconds)."""
    from envbuild_emulator.emulator import Emulator

    with Emulator(time_scale=0.0) as emu:
        # Emulator.client makes a new boto3 session (and loads the service model) per call: ~0.1 s
        # each, several per example. The test's own clients are reused; the handlers' are theirs.
        emu.client = functools.cache(emu.client)  # type: ignore[method-assign]
        yield emu
