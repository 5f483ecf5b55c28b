"""The spec's state form with the services' repeated values given once (serviceDefaults) through
the whole build: 52 production-like services using every field (the pipelined build's Register
Task Definitions branch and loop, each given the whole spec in its state form) land with the shared sidecar, health
check and overrides; every state carries the estimate's spec, the largest within the estimate
and its reserve; and a failed build's
rollback, whose teardown input reads the services' slim entries, removes all of them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from envbuild_lambda.spec import parse_spec, state_form
from envbuild_lambda.steps.summary import FAILURE_PATH_RESERVE_BYTES, largest_state
from tests.conftest import fill

from .helpers import entered, live_ecs_services, run_build

REPO = Path(__file__).resolve().parents[2]
N = 52

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def many_production_like(emulator: Any) -> dict[str, Any]:
    emulator.client("ssm").put_parameter(
        Name="/shop/fluent-bit-token", Type="SecureString", Value="token", Overwrite=True
    )
    text = (REPO / "events" / "production-like.json").read_text()
    raw: dict[str, Any] = json.loads(fill(text, emulator.prerequisites))
    web = raw["services"][0]
    web.pop("autoscaling")  # one scalable target per service: not what this test is about
    raw["services"] = [
        copy.deepcopy(web) | {"name": f"svc-{i:03d}", "port": 8000 + i, "desiredCount": 1}
        for i in range(N)
    ]
    return raw


def test_shared_values_reach_every_batch_and_the_largest_state_is_the_estimates(
    emulator: Any,
) -> None:
    spec = many_production_like(emulator)
    state = state_form(parse_spec(spec))
    assert {"sidecars", "healthCheck", "overrides"} <= set(state["serviceDefaults"])

    described, history = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert len(entered(history, "Register Task Definitions")) == 1
    assert entered(history, "Register Task Definitions And Create Services")
    ecs = emulator.client("ecs")
    for name in ("svc-000", f"svc-{N - 1:03d}"):  # the first and the last service's
        definition = ecs.describe_task_definition(taskDefinition=f"shop_{name}")["taskDefinition"]
        main, sidecar = definition["containerDefinitions"]
        assert sidecar["name"] == "log-router"
        assert main["healthCheck"]["command"][0] == "CMD-SHELL"
        assert main["stopTimeout"] == 30  # overrides.container
        assert definition["runtimePlatform"]["cpuArchitecture"] == "ARM64"

    # Every state after Validate Spec (the execution's input, the user's spec, comes before it)
    sizes = [
        (len(details[part].encode()), document)
        for event in history
        for key, details in event.items()
        if key.endswith("EventDetails") and isinstance(details, dict)
        for part in ("input", "output")
        if isinstance(details.get(part), str) and details[part].startswith("{")
        if (document := json.loads(details[part])) != spec
    ]
    largest, biggest = max(sizes, key=lambda item: item[0])
    # the spec every state carries is the estimate's; the largest state (at 52 services Check
    # Services', whose working state weighs more than the summary) stays within the estimate
    # and the failure path's reserve Validate Spec keeps beside it
    estimate = largest_state(parse_spec(spec))
    assert biggest["spec"] == json.loads(json.dumps(estimate["spec"]))
    assert largest <= len(json.dumps(estimate).encode()) + FAILURE_PATH_RESERVE_BYTES
    raw = len(json.dumps(spec).encode())
    assert largest < raw  # the state form carries less than the spec the user wrote


def test_a_failed_build_of_shared_state_services_rolls_every_one_back(emulator: Any) -> None:
    spec = many_production_like(emulator)
    emulator.world.faults.containers_unhealthy(f"svc-{N - 1:03d}-service")
    described, _ = run_build(emulator, spec)
    assert described["status"] == "FAILED"
    assert described["error"] == "DeploymentFailed"
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    assert live_ecs_services(emulator.client("ecs"), cluster) == []
    assert emulator.client("servicediscovery").list_services()["Services"] == []
