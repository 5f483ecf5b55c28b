"""A failed build removes exactly what it created (onFailure: rollback, the default) or keeps it
for a re-run (onFailure: keep); adopted resources are never touched."""

from __future__ import annotations

from typing import Any

from envbuild.cli import rollback_outcome as cli_rollback_outcome
from tests.workflow.helpers import account_snapshot, existing_namespace, run_build, states_entered


def rollback_outcome(history: list[dict[str, Any]]) -> str:
    outcome = cli_rollback_outcome(history)
    assert outcome, "no rollback outcome in the history"
    return outcome


def test_a_failure_after_namespace_registries_and_task_definitions_leaves_the_account_as_before(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    before = account_snapshot(emulator)
    emulator.dispatcher.fail_next("CreateServicesFunction", "RuntimeError", times=1)

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "RuntimeError"  # the original Error and Cause
    assert "injected crash of CreateServicesFunction" in described["cause"]
    entered = states_entered(history)
    assert entered[-9:] == [
        "Roll Back?",
        "Services Updated?",  # no: the crash came before Create Services updated anything
        "Name The Rollback",
        "Hand The Lock To The Rollback",  # the rollback runs under this build's lock
        "Roll Back",
        "Release Lock After Failure",
        "Describe Failure",
        "Announce Build Failed",  # Environment Build Failed (issue 6)
        "Build Failed",
    ]
    outcome = rollback_outcome(history)
    assert "namespace workshop.local" in outcome
    assert "3 task definition revision(s)" in outcome
    assert account_snapshot(emulator) == before
    inactive = emulator.client("ecs").list_task_definitions(status="INACTIVE")["taskDefinitionArns"]
    assert len(inactive) == 3  # deregistered, as ECS keeps them


def test_services_that_never_start_are_rolled_back_too(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    before = account_snapshot(emulator)
    emulator.world.faults.tasks_fail_to_start(
        "api-service", reason="CannotPullContainerError: denied"
    )

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "DeploymentFailed"  # the circuit breaker failed it
    assert "api-service" in described["cause"]
    assert "3 ECS service(s)" in rollback_outcome(history)
    assert account_snapshot(emulator) == before


def test_an_adopted_namespace_survives_the_rollback(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    sd = emulator.client("servicediscovery")
    existing = existing_namespace(emulator, "workshop.local", workshop_spec["namespace"]["vpcId"])
    before = account_snapshot(emulator)
    emulator.dispatcher.fail_next("VerifyDnsFunction", "RuntimeError", times=1)

    described, history = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert "namespace" not in rollback_outcome(history).split("kept")[0]
    assert [n["Id"] for n in sd.list_namespaces()["Namespaces"]] == [existing]
    assert account_snapshot(emulator) == before


def test_on_failure_keep_leaves_everything_and_a_rerun_completes_the_environment(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = {**workshop_spec, "onFailure": "keep"}
    emulator.dispatcher.fail_next("CreateServicesFunction", "RuntimeError", times=1)

    failed, history = run_build(emulator, spec)

    assert failed["status"] == "FAILED"
    assert "nothing removed" in rollback_outcome(history)
    kept = account_snapshot(emulator)
    assert kept["namespaces"] == ["workshop.local"]
    assert len(kept["task_definitions"]) == 3

    rerun, _ = run_build(emulator, spec)

    assert rerun["status"] == "SUCCEEDED", rerun.get("cause")
    after = account_snapshot(emulator)
    assert after["namespaces"] == ["workshop.local"]
    assert after["registries"] == ["api", "db", "web"]
    assert after["task_definitions"] == kept["task_definitions"]  # no duplicate revision
    assert len(after["ecs_services"]) == 3


def test_a_failed_preflight_has_nothing_to_roll_back(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = {**workshop_spec, "cluster": "missing-cluster"}

    described, history = run_build(emulator, spec)

    assert described["error"] == "PreflightFailed"
    assert "Roll Back" not in states_entered(history)
    assert "nothing to roll back" in rollback_outcome(history)
