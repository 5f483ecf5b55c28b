"""Issue 15: the build's child executions (Roll Back, Prune Removed Services) must be startable
for every valid environment name, under StartExecution's 80-character name limit, which the
emulator enforces (envbuild_emulator/sfn_limits.py).

Child names are '<environment>-rollback-<12 hex>' (at most 40 + 10 + 12 = 62 characters); they
were '<environment>-rollback-<uuid>', 86 characters for a 40-character environment.
"""

from __future__ import annotations

from typing import Any

from envbuild.cli import rollback_outcome
from tests.workflow.helpers import entered, run_build


def test_the_rollback_of_an_environment_with_the_longest_name_starts(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    workshop_spec["environment"] = "e" * 40  # the spec's maximum
    emulator.dispatcher.fail_next("CreateServicesFunction", "RuntimeError", times=1)

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert entered(history, "Roll Back")
    assert not entered(history, "Rollback Failed"), rollback_outcome(history)
    assert "namespace" in rollback_outcome(history)  # it ran, and removed what the build made
