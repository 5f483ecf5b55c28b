"""The patch points: they must exist (fail loudly if moto moves them) and be undone cleanly."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import boto3
import pytest
from moto.core.responses import BaseResponse
from moto.ecs.models import EC2ContainerServiceBackend
from moto.servicediscovery.models import ServiceDiscoveryBackend

from envbuild_emulator.clock import Clock
from envbuild_emulator.models import (
    INTERNALS,
    PATCH_POINTS,
    MotoInternalsChanged,
    Ref,
    World,
    lookup,
)
from envbuild_emulator.moto_internals import INTERPRETER_PATCH_POINTS, Patcher

from .conftest import Clients, Network


@pytest.mark.parametrize("ref", PATCH_POINTS + INTERPRETER_PATCH_POINTS + INTERNALS, ids=str)
def test_every_moto_internal_the_models_use_exists(ref: Ref) -> None:
    assert lookup(ref.module, ref.attr) is not None


def test_a_moved_internal_fails_loudly_and_names_it() -> None:
    with pytest.raises(MotoInternalsChanged, match=r"moto\.ecs\.models\.Task\.no_such_method"):
        lookup("moto.ecs.models", "Task.no_such_method")
    with pytest.raises(MotoInternalsChanged, match=r"moto\.no_such_module"):
        lookup("moto.no_such_module", "Anything")
    with pytest.raises(MotoInternalsChanged, match="NoSuchClass"):
        Patcher().replace("moto.ecs.models", "NoSuchClass.method", lambda original: original)


def test_install_patches_and_uninstall_restores_everything() -> None:
    before = {str(ref): lookup(ref.module, ref.attr) for ref in PATCH_POINTS}
    world = World(Clock())
    with world:
        assert world.installed
        changed = [
            str(ref) for ref in PATCH_POINTS if lookup(ref.module, ref.attr) is not before[str(ref)]
        ]
        assert changed == [str(ref) for ref in PATCH_POINTS]
        with pytest.raises(RuntimeError, match="another envbuild World"):
            World(Clock()).install()
    assert [world.installed] == [False]
    after = {str(ref): lookup(ref.module, ref.attr) for ref in PATCH_POINTS}
    assert after == before
    assert (
        vars(BaseResponse)["call_action"] is before["moto.core.responses.BaseResponse.call_action"]
    )
    assert (
        vars(EC2ContainerServiceBackend)["create_service"]
        is before["moto.ecs.models.EC2ContainerServiceBackend.create_service"]
    )
    assert (
        vars(ServiceDiscoveryBackend)["register_instance"]
        is before["moto.servicediscovery.models.ServiceDiscoveryBackend.register_instance"]
    )


def test_moto_reset_clears_the_model_state(world: World, aws: Clients, network: Network) -> None:
    from moto.moto_api._internal.models import moto_api_backend

    aws.sd.create_private_dns_namespace(Name="app.local", Vpc=network.vpc_id)
    moto_api_backend.reset()  # what POST /moto-api/reset does
    world.clock.advance(120)
    # the pending operation went with the data: nothing appears later
    assert aws.sd.list_namespaces()["Namespaces"] == []
    assert aws.sd.list_operations()["Operations"] == []
    assert aws.route53.list_hosted_zones()["HostedZones"] == []


def test_concurrent_requests_are_served_one_at_a_time(
    world: World, boto_session: boto3.session.Session
) -> None:
    """moto's backends are plain dicts: DescribeLogGroups iterating the groups while another
    thread's CreateLogGroup adds one raised "dictionary changed size during iteration" (a
    200-service build failed so, 1 in 4). The handlers call AWS from thread pools; the World
    serves one request at a time, as consistently as AWS does."""
    logs = boto_session.client("logs")
    errors: list[BaseException] = []

    def create(worker: int) -> None:
        for index in range(250):
            logs.create_log_group(logGroupName=f"/ecs/race-{worker}-{index}")

    def describe() -> None:
        for _ in range(250):
            logs.describe_log_groups(logGroupNamePrefix="/ecs/")

    def run(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(functools.partial(create, w),)) for w in range(3)]
    threads += [threading.Thread(target=run, args=(describe,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    groups = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="/ecs/race-")
    assert sum(len(page["logGroups"]) for page in groups) == 750
