"""Ownership (issue 14 items 5 and 6): envbuild changes and deletes only what it owns, and finds
every resource of a derived name it does not own before anything is created.

Each test reproduces the original scenario on the real ASL in the emulator and compares what the
user owns, described through the AWS APIs, before and after.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from tests.workflow.helpers import run_build


def environment_spec(spec: dict[str, Any], environment: str, services: list[str]) -> dict[str, Any]:
    """The workshop spec as environment ``environment`` (namespace <environment>.local) with one
    copy of its web service per name."""
    new = copy.deepcopy(spec)
    new["environment"] = environment
    new["namespace"]["name"] = f"{environment}.local"
    web = next(s for s in spec["services"] if s["name"] == "web")
    new["services"] = [{**web, "name": name, "desiredCount": 1} for name in services]
    return new


def built(emulator: Any, spec: dict[str, Any]) -> dict[str, Any]:
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    return dict(json.loads(described["output"]))


def describe_owned(
    emulator: Any, log_groups: list[str], families: list[str], ecs_services: Sequence[str] = ()
) -> dict[str, Any]:
    """Log groups (with their tags), task definition revisions (with their tags) and ECS services
    (status, task definition, desired count, registries, tags), as a user reads them."""
    logs, ecs = emulator.client("logs"), emulator.client("ecs")
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    groups = {}
    for name in log_groups:
        found = [
            g
            for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            if g["logGroupName"] == name
        ]
        groups[name] = (
            logs.list_tags_log_group(logGroupName=name)["tags"] if found else "(does not exist)"
        )
    revisions = {}
    for family in families:
        for status in ("ACTIVE", "INACTIVE"):
            for arn in ecs.list_task_definitions(familyPrefix=family, status=status)[
                "taskDefinitionArns"
            ]:
                answer = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
                revisions[arn.rsplit("/", 1)[-1]] = (status, answer.get("tags", []))
    services = {}
    if ecs_services:
        described = ecs.describe_services(
            cluster=cluster, services=list(ecs_services), include=["TAGS"]
        )
        for s in described["services"]:
            services[s["serviceName"]] = (
                s["status"],
                s["taskDefinition"],
                s["desiredCount"],
                [r["registryArn"] for r in s.get("serviceRegistries", [])],
                s.get("tags", []),
            )
    return {"logGroups": groups, "taskDefinitions": revisions, "ecsServices": services}


# ---------------------------------------------------------------------------------------------
# Item 5: names that cannot collide


def test_two_environments_whose_hyphenated_names_collided_keep_their_own_resources(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Environment a with service b-web and environment a-b with service web both derived family
    and log group a-b-web: tearing a down deleted the log group a-b's tasks were writing to."""
    a = environment_spec(workshop_spec, "a", ["b-web"])
    a_b = environment_spec(workshop_spec, "a-b", ["web"])
    built(emulator, a)
    summary = built(emulator, a_b)

    [web] = summary["services"]
    assert web["taskDefinition"] == "a-b_web:1"
    definition = emulator.client("ecs").describe_task_definition(taskDefinition="a-b_web")
    options = definition["taskDefinition"]["containerDefinitions"][0]["logConfiguration"]
    assert options["options"]["awslogs-group"] == "/ecs/a-b_web"
    assert sorted(
        g["logGroupName"]
        for g in emulator.client("logs").describe_log_groups(logGroupNamePrefix="/ecs/a")[
            "logGroups"
        ]
    ) == ["/ecs/a-b_web", "/ecs/a_b-web"]
    before = describe_owned(emulator, ["/ecs/a-b_web"], ["a-b_web"], ["web-service"])

    teardown = emulator.wait(
        emulator.start_teardown({**a, "deleteLogGroups": True, "deregisterTaskDefinitions": True})
    )

    assert teardown["status"] == "SUCCEEDED", teardown.get("cause")
    removed = json.loads(teardown["output"])["removed"]
    assert removed["logGroups"] == ["/ecs/a_b-web"]
    assert removed["taskDefinitions"] == ["a_b-web:1"]
    after = describe_owned(emulator, ["/ecs/a-b_web"], ["a-b_web"], ["web-service"])
    assert after == before
    assert after["logGroups"]["/ecs/a-b_web"]["envbuild:environment"] == "a-b"
    assert after["ecsServices"]["web-service"][:3] == (
        "ACTIVE",
        definition["taskDefinition"]["taskDefinitionArn"],
        1,
    )
