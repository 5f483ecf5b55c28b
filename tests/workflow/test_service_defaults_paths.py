"""A spec written with serviceDefaults (values every service gets unless it sets the field
itself) builds, plans, re-runs and tears down exactly like the same spec written out in full."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.workflow.helpers import run_build
from tests.workflow.test_convergence_edits import rows
from tests.workflow.test_convergence_paths import (
    built,
    ecs_service,
    environment_calls,
    mutating,
    planned,
)

DEFAULTS = {
    "cpu": "512",
    "memory": "1024",
    "environment": {"LOG_LEVEL": "info"},
    "logRetentionDays": 14,
}


def with_defaults(workshop_spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(workshop_spec)
    for service in spec["services"]:
        for key in ("cpu", "memory", "environment"):
            service.pop(key, None)
    spec["services"][1]["environment"] = {"MODE": "api"}  # its own: replaces the default's
    spec["serviceDefaults"] = DEFAULTS
    return spec


def container(emulator: Any, family: str) -> tuple[dict[str, Any], dict[str, Any]]:
    definition = emulator.client("ecs").describe_task_definition(taskDefinition=family)[
        "taskDefinition"
    ]
    return definition, definition["containerDefinitions"][0]


def test_a_spec_with_service_defaults_builds_each_service_with_them_and_converges(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = with_defaults(workshop_spec)

    output = built(emulator, spec)

    assert sorted(s["name"] for s in output["services"]) == ["api", "db", "web"]
    logs = emulator.client("logs")
    for name in ("web", "api", "db"):
        definition, main = container(emulator, f"workshop_{name}")
        assert (definition["cpu"], definition["memory"]) == ("512", "1024")
        environment = {e["name"]: e["value"] for e in main.get("environment", [])}
        assert environment == ({"MODE": "api"} if name == "api" else {"LOG_LEVEL": "info"})
        group = logs.describe_log_groups(logGroupNamePrefix=f"/ecs/workshop_{name}")["logGroups"]
        assert group[0]["retentionInDays"] == 14
        assert ecs_service(emulator, f"{name}-service")["status"] == "ACTIVE"

    # re-run: nothing to change, the plan shows nothing
    again, _ = planned(emulator, spec)
    assert rows(again) == []
    emulator.aws_faults.calls.clear()
    built(emulator, spec)
    assert not environment_calls(mutating(emulator))

    # an edit of the defaults reaches every service that takes them, and only those
    edited = copy.deepcopy(spec)
    edited["serviceDefaults"]["environment"] = {"LOG_LEVEL": "debug"}
    plan, _ = planned(emulator, edited)
    changed = sorted(r[1] for r in rows(plan) if r[0] == "taskDefinition")
    assert changed == ["workshop_db", "workshop_web"]
    built(emulator, edited)
    _definition, web = container(emulator, "workshop_web")
    assert {e["name"]: e["value"] for e in web["environment"]} == {"LOG_LEVEL": "debug"}
    assert container(emulator, "workshop_api")[0]["revision"] == 1

    # the teardown takes the same spec
    described = emulator.wait(emulator.start_teardown(edited))
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["output"])["removed"]["ecsServices"]


def test_bad_service_defaults_fail_the_build_before_anything_is_created(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    spec = with_defaults(workshop_spec)
    spec["serviceDefaults"] = {**DEFAULTS, "name": "x", "desiredCount": -1}

    described, _history = run_build(emulator, spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidSpec"
    assert "serviceDefaults.name: each service names itself" in described["cause"]
    assert "serviceDefaults.desiredCount:" in described["cause"]
    assert not emulator.client("ecs").list_services(cluster=spec["cluster"])["serviceArns"]
