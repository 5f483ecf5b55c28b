"""The one place where clients are made (functions/envbuild_lambda/aws.py) and the caller's ARN parts."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from envbuild_lambda.aws import BOTO_CONFIG, Caller, Clients, get_clients
from envbuild_lambda.settings import PollSchedule
from envbuild_lambda.spec import parse_spec
from envbuild_lambda.state import Poll, ServicesState
from envbuild_lambda.steps import services, verify

from .conftest import session, workshop_spec


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (
            "arn:aws:lambda:us-east-1:123456789012:function:x",
            Caller("aws", "us-east-1", "123456789012"),
        ),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:x:live",
            Caller("aws", "eu-west-1", "123456789012"),
        ),
        (
            "arn:aws-cn:lambda:cn-north-1:210987654321:function:x",
            Caller("aws-cn", "cn-north-1", "210987654321"),
        ),
        (
            "arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:x",
            Caller("aws-us-gov", "us-gov-west-1", "111122223333"),
        ),
    ],
)
def test_caller_is_read_from_the_function_arn(arn: str, expected: Caller) -> None:
    assert Caller.from_function_arn(arn) == expected


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "x",
        "arn:aws:lambda:us-east-1:123456789012",
        "arn:aws:s3:us-east-1:123456789012:function:x",
    ],
)
def test_a_string_that_is_not_a_function_arn_is_refused(arn: str) -> None:
    with pytest.raises(ValueError, match="not a Lambda function ARN"):
        Caller.from_function_arn(arn)


def test_caller_builds_arns_of_its_partition_region_and_account() -> None:
    caller = Caller("aws-cn", "cn-north-1", "210987654321")
    assert (
        caller.arn("ecs", "service/c/web-service")
        == "arn:aws-cn:ecs:cn-north-1:210987654321:service/c/web-service"
    )


def test_clients_use_the_one_config_with_standard_retries(mocked_aws: None) -> None:
    clients = Clients(session())
    for client in (clients.servicediscovery, clients.ecs, clients.logs, clients.route53):
        # botocore reads max_attempts 5 as 5 retries: 6 attempts in all
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
        assert "envbuild" in client.meta.config.user_agent_extra
    assert BOTO_CONFIG.connect_timeout == 5
    assert clients.ecs is clients.ecs  # made once


def test_clients_are_made_on_first_use_only() -> None:
    class NoClients:
        def client(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("client made")

    Clients(NoClients())  # type: ignore[arg-type]


def test_get_clients_is_one_object_for_every_thread() -> None:
    here = get_clients()
    assert get_clients() is here
    there: list[Clients] = []
    worker = threading.Thread(target=lambda: there.append(get_clients()))
    worker.start()
    worker.join()
    assert there[0] is here  # clients are thread-safe; their creation is serialised


# --- one boto3 session used from one thread at a time ----------------------------------------------


class OverlapSession:
    """A session that notices two threads inside ``client()`` at once (boto3 sessions are not thread-safe).

    Whoever enters ``client()`` alone stays there a moment, so that a racing thread is caught.
    """

    def __init__(self, made: dict[str, Any]) -> None:
        self._made = made
        self._lock = threading.Lock()
        self._inside = 0
        self._caught = threading.Event()
        self.overlapped = False

    def client(self, service_name: str, config: Any = None) -> Any:
        with self._lock:
            self._inside += 1
            if self._inside > 1:
                self.overlapped = True
                self._caught.set()
        self._caught.wait(timeout=0.3)
        with self._lock:
            self._inside -= 1
        return self._made[service_name]


class Ecs:
    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        return {
            "services": [
                {"serviceName": n, "status": "ACTIVE", "runningCount": 0} for n in services
            ]
        }

    def get_paginator(self, name: str) -> Any:
        return Pages({"taskArns": []})

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        return {"tasks": []}


class Pages:
    def __init__(self, page: dict[str, Any]) -> None:
        self.page = page

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        return [self.page]


class CloudMap:
    def get_paginator(self, name: str) -> Any:
        return Pages({"Instances": []})

    def discover_instances(self, **kwargs: Any) -> dict[str, Any]:
        return {"Instances": []}

    def get_instances_health_status(self, **kwargs: Any) -> dict[str, Any]:
        return {"Status": {}}


class Route53:
    def get_paginator(self, name: str) -> Any:
        return Pages({"ResourceRecordSets": []})


class Ssm:
    def get_paginator(self, name: str) -> Any:
        return Pages({"Parameters": []})

    def put_parameter(self, **kwargs: Any) -> dict[str, Any]:
        return {"Version": 1}


def test_check_services_never_uses_the_session_from_two_threads_at_once() -> None:
    fake = OverlapSession({"ecs": Ecs(), "servicediscovery": CloudMap()})
    spec = parse_spec(workshop_spec())
    state = ServicesState(ready=False, poll=Poll(attempt=0, waitSeconds=10, maxAttempts=40))
    registries = {"web": "srv-1", "api": "srv-2", "db": "srv-3"}
    services.check_services(
        Clients(fake), spec, registries, state, PollSchedule(10, 20, 40), max_workers=4
    )  # type: ignore[arg-type]
    assert fake.overlapped is False


def test_verify_never_uses_the_session_from_two_threads_at_once(caller: Caller) -> None:
    fake = OverlapSession(
        {"ecs": Ecs(), "servicediscovery": CloudMap(), "route53": Route53(), "ssm": Ssm()}
    )
    raw = workshop_spec()
    for service in raw["services"]:
        service["desiredCount"] = 0
    spec = parse_spec(raw)
    from .test_verify import NAMESPACE, REGISTRIES, TASK_DEFINITIONS

    verify.verify(
        Clients(fake), caller, spec, NAMESPACE, REGISTRIES, TASK_DEFINITIONS, max_workers=4
    )  # type: ignore[arg-type]
    assert fake.overlapped is False


def test_sdk_loggers_never_log_request_bodies_whatever_the_root_level() -> None:
    """botocore logs request parameters (a task definition's environment) at DEBUG."""
    import logging

    import boto3

    from envbuild_lambda.aws import SDK_LOGGERS

    botocore = logging.getLogger("botocore")
    root = logging.getLogger()
    saved = (botocore.level, root.level)
    try:
        botocore.setLevel(logging.NOTSET)
        Clients(boto3.session.Session(region_name="us-east-1"))
        root.setLevel(logging.DEBUG)  # lowered after the clients were made, as LogLevel=DEBUG does
        assert not botocore.isEnabledFor(logging.DEBUG)
        assert all(logging.getLogger(name).level >= logging.INFO for name in SDK_LOGGERS)
    finally:
        botocore.setLevel(saved[0])
        root.setLevel(saved[1])
