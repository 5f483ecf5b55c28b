"""Issue 15 (AWS fidelity), on the real ASL in the emulator: behaviours of AWS the build must
survive or report as AWS does."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from tests.workflow.helpers import entered, run_build
from tests.workflow.test_discovery_and_outputs import capture_events, received


def test_a_five_second_discovery_lag_does_not_fail_the_build(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Item 5: ECS writes Cloud Map; DiscoverInstances and Route 53 follow seconds later. Verify
    DNS retries DiscoveryMismatch (bounded) instead of rolling back a healthy environment."""
    world = emulator.world
    world.latencies = dataclasses.replace(world.latencies, discovery_propagation_seconds=5.0)

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert len(entered(history, "Verify DNS")) == 1
    retried = [
        e for e in history if e["type"] == "TaskFailed" or e["type"] == "LambdaFunctionFailed"
    ]
    assert any("DiscoveryMismatch" in str(e) for e in retried), "the lag was not seen"
    assert not entered(history, "Roll Back")


def _start_error(emulator: Any, name: str, document: str) -> str | None:
    sfn = emulator.client("stepfunctions")
    try:
        arn = sfn.start_execution(
            stateMachineArn=emulator.state_machine_arn, name=name, input=document
        )["executionArn"]
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    emulator.wait(arn)  # an invalid spec: fails at Validate Spec
    return None


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("a" * 80, None),
        ("build-2026_12-06.x", None),
        ("a" * 81, "InvalidName"),
        ("workshop rollback", "InvalidName"),
        ("workshop:rollback", "InvalidName"),
        ("workshop/rollback", "InvalidName"),
        ("workshop\u0007", "InvalidName"),
        ("", "InvalidName"),
    ],
)
def test_start_execution_enforces_the_name_rules(
    emulator: Any, name: str, error: str | None
) -> None:
    """AWS StartExecution: a name of 1 to 80 characters without white space, brackets, wildcards,
    the special characters "#%\\^|~`$&,;:/ or control characters (moto accepts any)."""
    if name == "":
        # botocore refuses an empty name before sending it (min length 1)
        with pytest.raises(ParamValidationError):
            _start_error(emulator, name, "{}")
        return
    assert _start_error(emulator, name, "{}") == error


def test_start_execution_refuses_an_input_over_256_kib(emulator: Any) -> None:
    padding = "x" * (262_144 - len('{"p":""}'))
    assert (
        _start_error(emulator, "at-the-limit", json.dumps({"p": padding}, separators=(",", ":")))
        is None
    )
    assert _start_error(
        emulator, "over-the-limit", json.dumps({"p": padding + "x"}, separators=(",", ":"))
    ) == ("InvalidExecutionInput")
    # the limit is in UTF-8 bytes, not characters
    wide = "\u00e9" * (262_144 // 2)
    assert _start_error(emulator, "wide", json.dumps({"p": wide}, ensure_ascii=False)) == (
        "InvalidExecutionInput"
    )


def test_an_event_entry_that_fails_is_sent_again(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Item 8: PutEvents answers 200 with FailedEntryCount 1 (nothing delivered); the
    integration fails the Task with EventBridge.FailedEntry and the Retry sends it again."""
    queue = capture_events(emulator)
    emulator.aws_faults.fail_entries("events", "PutEvents", times=1)

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    failed = [e for e in history if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["EventBridge.FailedEntry"]
    assert [e["detail-type"] for e in received(emulator, queue)] == ["Environment Ready"]
