"""Large environments against the ECS rate quotas the emulator enforces (issue 8)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from envbuild_lambda.settings import get_settings
from envbuild_lambda.spec import parse_spec
from envbuild_lambda.steps.summary import largest_state
from tests.workflow.helpers import entered, run_build

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def many_services(emulator: Any, n: int) -> dict[str, Any]:
    p = emulator.prerequisites
    return {
        "environment": f"scale{n}",
        "namespace": {"name": f"scale{n}.local", "vpcId": p["VPC_ID"]},
        "cluster": p["CLUSTER_NAME"],
        "network": {
            "subnets": [p["PRIVATE_SUBNET_1"], p["PRIVATE_SUBNET_2"]],
            "securityGroups": [p["ECS_SG"]],
        },
        "services": [
            {"name": f"svc{i:03d}", "image": "nginx:latest", "port": 80, "desiredCount": 1}
            for i in range(n)
        ],
    }


@pytest.fixture
def settings_from_env() -> Iterator[None]:
    """The handlers read their settings once per process: re-read them around the test."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_sixty_services_register_and_start_in_two_paced_invocations_without_throttling(
    emulator: Any,
) -> None:
    spec = many_services(emulator, 60)
    described, history = run_build(emulator, spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    failures = [
        (e["type"], json.dumps(e, default=str)[:400])
        for e in history
        if e["type"].endswith(("Failed", "TimedOut"))
    ]
    assert failures == []
    # the pipelined build (steps/pipeline.py): task definitions while the namespace operation
    # runs (one invocation, at most 60 s), then the loop registers the rest and creates the
    # services: one invocation each, 60 s of work at most
    assert len(entered(history, "Register Task Definitions")) == 1
    turns = entered(history, "Register Task Definitions And Create Services")
    assert len(turns) == 1
    assert emulator.dispatcher.invocations["RegisterTaskDefinitionsFunction"] == 2
    ecs = emulator.client("ecs")
    assert len(ecs.list_task_definition_families(status="ACTIVE")["families"]) == 60
    # paced at 1 RegisterTaskDefinition and 5 CreateService per second: ECS never said no
    assert sum(emulator.throttling.throttled.values()) == 0

    # At 60 services the largest state is what Verify DNS hands on (spec + summary, nothing
    # else), and the estimate Validate Spec checks against Step Functions' limit is not below it.
    sizes = [
        (len(details[part].encode()), details.get("name"), json.loads(details[part]))
        for event in history
        for key, details in event.items()
        if key.endswith("EventDetails") and isinstance(details, dict)
        for part in ("input", "output")
        if isinstance(details.get(part), str)
    ]
    largest, _, state = max(sizes, key=lambda item: item[0])
    assert sorted(state) == ["spec", "summary"]
    estimate = largest_state(parse_spec(spec))
    assert [sorted(s) for s in estimate["summary"]["services"]] == [
        sorted(s) for s in state["summary"]["services"]
    ]
    assert sorted(estimate["summary"]["outputs"]) == sorted(state["summary"]["outputs"])
    assert largest <= len(json.dumps(estimate).encode()) <= 2 * largest


def test_unpaced_fan_out_is_throttled_and_recovers_by_retrying(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, settings_from_env: None
) -> None:
    # Pacing set far above the ECS quotas: the emulator answers ThrottlingException, as AWS
    # would, and the calls are tried again after a pause instead of failing the build.
    monkeypatch.setenv("ECS_TASK_DEFINITION_WRITES_PER_SECOND", "100")
    monkeypatch.setenv("ECS_SERVICE_WRITES_PER_SECOND", "100")
    get_settings.cache_clear()

    described, _ = run_build(emulator, many_services(emulator, 12))

    assert described["status"] == "SUCCEEDED", described.get("cause")
    throttled = emulator.throttling.throttled
    assert throttled[("ecs", "RegisterTaskDefinition")] > 0
    assert throttled[("ecs", "CreateService")] > 0
    ecs = emulator.client("ecs")
    assert len(ecs.list_task_definition_families(status="ACTIVE")["families"]) == 12
    # every family has exactly one revision: a throttled call was not applied, its retry was
    arns = ecs.list_task_definitions()["taskDefinitionArns"]
    assert len(arns) == 12


def test_many_services_read_cloud_map_only_for_services_not_yet_found_ready(
    emulator: Any,
) -> None:
    """Issue 18's read budget: Check Services reads a registry (ListInstances +
    GetInstancesHealthStatus) only once the service's ECS side is ready and no earlier poll found
    it ready, and Verify DNS reads none (DiscoverInstances, HealthStatus ALL, one per service):
    far fewer than 2 reads per service per poll, with the tasks listed per cluster."""
    n = 40
    emulator.aws_faults.calls.clear()
    before = {f: Counter(c) for f, c in emulator.aws_faults.function_calls.by_function().items()}
    described, history = run_build(emulator, many_services(emulator, n))
    assert described["status"] == "SUCCEEDED", described.get("cause")
    calls = emulator.aws_faults.calls
    by_function = emulator.aws_faults.function_calls.by_function()

    def made(function: str, service: str, operation: str) -> int:
        key = (service, operation)
        return by_function.get(function, Counter())[key] - before.get(function, Counter())[key]

    polls = len(entered(history, "Check Services"))
    registry_reads = made("CheckServicesFunction", "servicediscovery", "ListInstances") + made(
        "CheckServicesFunction", "servicediscovery", "GetInstancesHealthStatus"
    )
    # each registry's two pages once the service's tasks all run, until a poll finds it ready
    # (before: 2 reads per service per poll, and 2 more per service in Verify DNS): at most half
    assert polls >= 2
    assert registry_reads <= n * polls, (registry_reads, polls)
    assert made("VerifyDnsFunction", "servicediscovery", "ListInstances") == 0
    assert made("VerifyDnsFunction", "servicediscovery", "GetInstancesHealthStatus") == 0
    assert calls[("servicediscovery", "DiscoverInstances")] == n
    # Verify DNS lists the cluster's tasks (one page here), not each service's
    assert made("VerifyDnsFunction", "ecs", "ListTasks") == 1
