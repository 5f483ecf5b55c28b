"""The fault matrix (issue 3): every step that changes something x every kind of fault, on the real
ASL in the emulator. Each cell asserts its outcome; together they write docs/fault-matrix.md,
which must match what is committed (ENVBUILD_WRITE_MATRIX=1 rewrites it).

A transient fault ends in success; a lasting one in a failure with a clear cause. With
rollback nothing the build created remains; with keep a re-run completes the environment. In no
case a duplicate resource.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.retries import standard

from envbuild.cli import rollback_outcome
from tests.workflow.helpers import account_snapshot, run_build

MATRIX = Path(__file__).resolve().parents[2] / "docs" / "fault-matrix.md"

#: step -> (its Lambda logical id, the AWS calls it makes that change something)
STEPS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "Create Namespace": (
        "CreateNamespaceFunction",
        [("servicediscovery", "CreatePrivateDnsNamespace")],
    ),
    "Create Registries": ("CreateRegistriesFunction", [("servicediscovery", "CreateService")]),
    "Register Task Definitions": (
        "RegisterTaskDefinitionsFunction",
        [("logs", "CreateLogGroup"), ("ecs", "RegisterTaskDefinition")],
    ),
    "Create Services": ("CreateServicesFunction", [("ecs", "CreateService")]),
}
FAULTS = [
    "throttling burst",
    "transient 5xx",
    "response lost",
    "Cloud Map operation FAIL",
    "handler crash",
    "handler timeout",
]
#: more failures than the SDK's own attempts, so the state machine's Retry is exercised too
BURST = 8
# One process sees every cell (the document test checks them all): one xdist worker for them.
pytestmark = pytest.mark.xdist_group("fault_matrix")

OBSERVED: dict[tuple[str, str], str] = {}

#: The teardown's steps that change something (issue 15 item 7; every rollback and prune runs
#: them): step -> (its Lambda logical id, the AWS calls it makes that change something).
TEARDOWN_STEPS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "Scale ECS Services To Zero": ("TeardownScaleServicesFunction", [("ecs", "UpdateService")]),
    "Delete ECS Services": ("TeardownDeleteServicesFunction", [("ecs", "DeleteService")]),
    "Deregister Instances": (
        "TeardownDeregisterInstancesFunction",
        [("servicediscovery", "DeregisterInstance")],
    ),
    "Delete Cloud Map Services": (
        "TeardownDeleteRegistriesFunction",
        [("servicediscovery", "DeleteService")],
    ),
    "Delete Namespace": (
        "TeardownDeleteNamespaceFunction",
        [("servicediscovery", "DeleteNamespace")],
    ),
    "Remove Log Groups And Task Definitions": (
        "TeardownFinishFunction",
        [("logs", "DeleteLogGroup"), ("ecs", "DeregisterTaskDefinition")],
    ),
}
TEARDOWN_FAULTS = [
    "throttling burst",
    "transient 5xx",
    "response lost",
    "handler crash",
    "handler timeout",
]
TEARDOWN_OPTIONS = {"deleteLogGroups": True, "deregisterTaskDefinitions": True}
#: a static instance, so that Deregister Instances has something to deregister (ECS deregisters
#: the tasks' instances itself when they stop)
STATIC_INSTANCE = {"id": "db-primary", "ipv4": "10.0.3.100", "attributes": {"role": "primary"}}
TEARDOWN_OBSERVED: dict[tuple[str, str], str] = {}


@pytest.fixture(autouse=True)
def no_sdk_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's retry back-off sleeps in real time; the emulator's waits are virtual."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


def counts(emulator: Any) -> dict[str, int]:
    snapshot = account_snapshot(emulator)
    return {key: len(value) for key, value in snapshot.items()}


def arm(emulator: Any, step: str, fault: str) -> bool:
    """Inject the fault; False if the cell does not apply to the step."""
    function, calls = STEPS[step]
    if fault == "Cloud Map operation FAIL":
        if step != "Create Namespace":
            return False
        emulator.world.faults.fail_namespace_operation("workshop.local", message="injected FAIL")
    elif fault == "handler crash":
        emulator.dispatcher.fail_next(function, "RuntimeError", times=100)
    elif fault == "handler timeout":
        emulator.dispatcher.fail_next(function, "Sandbox.Timedout", times=1)
    else:
        for service, action in calls:
            if fault == "throttling burst":
                emulator.aws_faults.throttle(service, action, times=BURST)
            elif fault == "transient 5xx":
                emulator.aws_faults.unavailable(service, action, times=BURST)
            else:
                emulator.aws_faults.lose_response(service, action, times=2)
    return True


COMPLETE = {
    "namespaces": 1,
    "registries": 3,
    "task_definitions": 3,
    "ecs_services": 3,
    "log_groups": 3,
    "hosted_zones": 1,
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", list(STEPS))
def test_fault_cell(emulator: Any, workshop_spec: dict[str, Any], step: str, fault: str) -> None:
    before = account_snapshot(emulator)
    if not arm(emulator, step, fault):
        OBSERVED[(step, fault)] = "n/a (no Cloud Map operation)"
        return

    described, history = run_build(emulator, workshop_spec)

    if fault in ("handler crash", "Cloud Map operation FAIL"):
        assert described["status"] == "FAILED"
        expected = "RuntimeError" if fault == "handler crash" else "NamespaceOperationFailed"
        assert described["error"] == expected
        assert ("injected crash" if fault == "handler crash" else "injected FAIL") in described[
            "cause"
        ]
        assert account_snapshot(emulator) == before, "rollback left something behind"
        outcome = rollback_outcome(history) or ""
        # keep: the same fault, then a re-run without it completes the environment
        emulator.dispatcher.fail_next(STEPS[step][0], "RuntimeError", times=0)
        arm(emulator, step, fault)
        kept, _ = run_build(emulator, {**workshop_spec, "onFailure": "keep"})
        assert kept["status"] == "FAILED"
        emulator.dispatcher.fail_next(STEPS[step][0], "RuntimeError", times=0)
        rerun, _ = run_build(emulator, {**workshop_spec, "onFailure": "keep"})
        assert rerun["status"] == "SUCCEEDED", rerun.get("cause")
        assert counts(emulator) == COMPLETE, "a re-run after keep made a duplicate"
        assert outcome.startswith(("removed", "nothing found")), outcome
        OBSERVED[(step, fault)] = (
            f"fails `{expected}`; rollback: nothing left; keep: re-run completes"
        )
        return

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert counts(emulator) == COMPLETE, "a duplicate resource"
    # whether the SDK's retries sufficed or the state machine retried the step varies with timing
    OBSERVED[(step, fault)] = "succeeds, no duplicate"


def arm_teardown(emulator: Any, step: str, fault: str) -> None:
    function, calls = TEARDOWN_STEPS[step]
    if fault == "handler crash":
        emulator.dispatcher.fail_next(function, "RuntimeError", times=100)
    elif fault == "handler timeout":
        emulator.dispatcher.fail_next(function, "Sandbox.Timedout", times=1)
    else:
        for service, action in calls:
            if fault == "throttling burst":
                emulator.aws_faults.throttle(service, action, times=BURST)
            elif fault == "transient 5xx":
                emulator.aws_faults.unavailable(service, action, times=BURST)
            else:
                emulator.aws_faults.lose_response(service, action, times=2)


def run_teardown(emulator: Any, document: dict[str, Any]) -> dict[str, Any]:
    described: dict[str, Any] = emulator.wait(emulator.start_teardown(document))
    return described


@pytest.mark.parametrize("fault", TEARDOWN_FAULTS)
@pytest.mark.parametrize("step", list(TEARDOWN_STEPS))
def test_teardown_fault_cell(
    emulator: Any, workshop_spec: dict[str, Any], step: str, fault: str
) -> None:
    """The teardown (so every rollback and every prune) survives what the build survives: a
    transient fault in any of its steps still ends SUCCEEDED with nothing left; a crash that
    lasts fails naming it, and a re-run removes everything."""
    before = account_snapshot(emulator)
    workshop_spec["services"][2]["instances"] = [STATIC_INSTANCE]
    built, _ = run_build(emulator, workshop_spec)
    assert built["status"] == "SUCCEEDED", built.get("cause")
    function, calls = TEARDOWN_STEPS[step]
    invoked = emulator.dispatcher.invocations[function]
    made = {call: emulator.aws_faults.calls[call] for call in calls}
    arm_teardown(emulator, step, fault)

    described = run_teardown(emulator, {**workshop_spec, **TEARDOWN_OPTIONS})

    assert emulator.dispatcher.invocations[function] > invoked, f"{step} did not run"
    if fault not in ("handler crash", "handler timeout"):
        # the fault met the step's calls (a cell that injects nothing proves nothing)
        assert all(emulator.aws_faults.calls[call] > made[call] for call in calls), calls
    if fault == "handler crash":
        assert described["status"] == "FAILED"
        assert described["error"] == "RuntimeError"
        assert "injected crash" in described["cause"]
        emulator.dispatcher.fail_next(function, "RuntimeError", times=0)
        described = run_teardown(emulator, {**workshop_spec, **TEARDOWN_OPTIONS})
        outcome = "fails `RuntimeError`; re-run: succeeds, nothing left"
    else:
        outcome = "succeeds, nothing left"
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert account_snapshot(emulator) == before, "the teardown left something behind"
    TEARDOWN_OBSERVED[(step, fault)] = outcome


def render() -> str:
    lines = [
        "# Fault matrix",
        "",
        "Produced by `tests/workflow/test_fault_matrix.py` on the real state machine in the emulator",
        "(`ENVBUILD_WRITE_MATRIX=1 make pytest` rewrites it). Workshop spec; each cell is one build",
        f"with the fault injected into every call of that step that changes something (bursts of {BURST}",
        "for throttling and 5xx: more than the SDK's own retries; a lost response: the change applied",
        "and the answer dropped, twice). A failing cell is run with `onFailure: rollback` (the account",
        "must equal the one before) and with `keep` followed by a re-run that must complete. Every",
        "cell also checks that no resource exists twice.",
        "",
        "| step | " + " | ".join(FAULTS) + " |",
        "|---|" + "---|" * len(FAULTS),
    ]
    for step in STEPS:
        lines.append(
            f"| {step} | " + " | ".join(OBSERVED[(step, fault)] for fault in FAULTS) + " |"
        )
    lines += [
        "",
        "## Teardown (every rollback and prune runs it)",
        "",
        "Each cell builds the workshop spec (with a static instance, so that Deregister Instances",
        "has one to remove), injects the fault into every call of that teardown step that changes",
        "something, then runs the teardown with both options on: it must end SUCCEEDED with the",
        "account as before the build. A crash that lasts fails the teardown naming it; a re-run",
        "without it must then remove everything. The lock steps (Acquire Lock, Release Lock) are not",
        "in the table.",
        "",
        "| step | " + " | ".join(TEARDOWN_FAULTS) + " |",
        "|---|" + "---|" * len(TEARDOWN_FAULTS),
    ]
    for step in TEARDOWN_STEPS:
        lines.append(
            f"| {step} | "
            + " | ".join(TEARDOWN_OBSERVED[(step, fault)] for fault in TEARDOWN_FAULTS)
            + " |"
        )
    return "\n".join(lines) + "\n"


def test_fault_matrix_document_is_current() -> None:
    missing = [(s, f) for s in STEPS for f in FAULTS if (s, f) not in OBSERVED]
    missing += [
        (s, f) for s in TEARDOWN_STEPS for f in TEARDOWN_FAULTS if (s, f) not in TEARDOWN_OBSERVED
    ]
    if missing:
        pytest.skip(f"{len(missing)} cells did not run in this session")
    text = render()
    if os.environ.get("ENVBUILD_WRITE_MATRIX") == "1":
        MATRIX.write_text(text)
    assert MATRIX.read_text() == text, (
        "docs/fault-matrix.md is stale: run ENVBUILD_WRITE_MATRIX=1 make pytest"
    )


def test_observed_cells_are_json_safe() -> None:
    json.dumps({f"{s} / {f}": v for (s, f), v in OBSERVED.items()})
