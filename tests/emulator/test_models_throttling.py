"""ECS rate quotas on the emulator's clock (envbuild_emulator/throttling.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from envbuild_emulator.models import World
from envbuild_emulator.throttling import ApiThrottling, Quota, default_quotas

ONE_ATTEMPT = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture
def throttling(world: World) -> Iterator[ApiThrottling]:
    model = ApiThrottling(world.clock).install()
    try:
        yield model
    finally:
        model.uninstall()


@pytest.fixture
def ecs(world: World, boto_session: boto3.session.Session) -> Any:
    return boto_session.client("ecs", config=ONE_ATTEMPT)


def register(ecs: Any, family: str) -> None:
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "app", "image": "nginx:latest", "memory": 128}],
    )


def test_the_defaults_are_the_documented_sustained_rates() -> None:
    quotas = default_quotas()
    assert quotas[("ecs", "RegisterTaskDefinition")] == Quota(per_second=1.0, burst=1)
    assert quotas[("ecs", "CreateService")] == Quota(per_second=5.0, burst=5)
    assert quotas[("ecs", "UpdateService")] == Quota(per_second=5.0, burst=5)


def test_register_task_definition_beyond_one_per_second_is_throttled(
    world: World, throttling: ApiThrottling, ecs: Any
) -> None:
    register(ecs, "a")
    with pytest.raises(ClientError) as raised:
        register(ecs, "b")
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert raised.value.response["Error"]["Message"] == "Rate exceeded"
    assert throttling.throttled[("ecs", "RegisterTaskDefinition")] == 1
    assert ecs.list_task_definition_families()["families"] == ["a"]

    world.clock.advance(1)  # the bucket refills at the sustained rate
    register(ecs, "b")
    assert sorted(ecs.list_task_definition_families()["families"]) == ["a", "b"]


def test_calls_without_a_quota_are_never_throttled(
    world: World, throttling: ApiThrottling, ecs: Any
) -> None:
    for _ in range(50):
        ecs.list_clusters()
    assert sum(throttling.throttled.values()) == 0


def test_uninstall_restores_moto(world: World, boto_session: boto3.session.Session) -> None:
    ecs = boto_session.client("ecs", config=ONE_ATTEMPT)
    model = ApiThrottling(world.clock).install()
    model.uninstall()
    for family in ("a", "b", "c"):
        register(ecs, family)
    assert len(ecs.list_task_definition_families()["families"]) == 3
