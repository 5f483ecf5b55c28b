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


def test_the_bulk_reads_have_buckets_and_the_functions_pace_them_alike() -> None:
    from envbuild_emulator.throttling import READ_RATES
    from envbuild_lambda.pacing import READ_RATES as PACED

    quotas = default_quotas()
    assert PACED == READ_RATES
    for key in (
        ("ecs", "DescribeServices"),
        ("ecs", "DescribeTasks"),
        ("ecs", "ListTasks"),
        ("servicediscovery", "GetInstancesHealthStatus"),
        ("servicediscovery", "ListInstances"),
        ("servicediscovery", "DiscoverInstances"),
        ("servicediscovery", "GetOperation"),
        ("servicediscovery", "GetService"),
    ):
        assert quotas[key] == Quota(READ_RATES[key], int(READ_RATES[key]))
    assert quotas[("ecs", "DescribeServices")] == Quota(per_second=20.0, burst=20)
    # the one Cloud Map rate AWS documents (1,000/s sustained)
    assert quotas[("servicediscovery", "DiscoverInstances")].per_second == 1000.0


def test_cloud_map_reads_beyond_their_bucket_answer_request_limit_exceeded(
    world: World, throttling: ApiThrottling, boto_session: boto3.session.Session
) -> None:
    cloudmap = boto_session.client("servicediscovery", config=ONE_ATTEMPT)
    for _ in range(20):  # the bucket: one second of 20/s
        with pytest.raises(ClientError) as raised:
            cloudmap.get_service(Id="srv-missing")
        assert raised.value.response["Error"]["Code"] == "ServiceNotFound"
    with pytest.raises(ClientError) as raised:
        cloudmap.get_service(Id="srv-missing")
    assert raised.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert throttling.throttled[("servicediscovery", "GetService")] == 1
    world.clock.advance(1)
    with pytest.raises(ClientError) as raised:
        cloudmap.get_service(Id="srv-missing")
    assert raised.value.response["Error"]["Code"] == "ServiceNotFound"


def test_the_functions_clients_pace_reads_on_the_pacing_timer(
    world: World, throttling: ApiThrottling, boto_session: boto3.session.Session
) -> None:
    from envbuild_lambda import pacing
    from envbuild_lambda.aws import Clients

    waited: list[float] = []

    def sleep_until(deadline: float) -> None:
        waited.append(deadline - world.clock.now())
        world.clock.sleep_until(deadline)

    previous = pacing.TIMER
    pacing.TIMER = pacing.Timer(world.clock.now, sleep_until)
    pacing.reset_read_limiters()
    try:
        ecs = Clients(boto_session).ecs
        ecs.create_cluster(clusterName="c")
        start = world.clock.now()
        for _ in range(45):  # 20 from the full bucket, then 25 at 20/s
            ecs.describe_services(cluster="c", services=["a"])
    finally:
        pacing.TIMER = previous
        pacing.reset_read_limiters()
    assert throttling.throttled[("ecs", "DescribeServices")] == 0
    assert len(waited) == 25
    assert world.clock.now() - start == pytest.approx(25 / 20)
