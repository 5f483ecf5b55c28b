"""The one place where AWS clients are made: one botocore Config (standard retries)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_servicediscovery import ServiceDiscoveryClient
    from mypy_boto3_stepfunctions import SFNClient

BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="envbuild",
)


#: For calls AWS offers no idempotency token for (RegisterTaskDefinition): no SDK retry, whose
#: second attempt after a lost response would apply the change twice. The state machine retries
#: the whole step instead, which first looks for what the lost attempt made.
ONCE_CONFIG = BOTO_CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))


#: At DEBUG, botocore logs every request's parameters and body, which hold the spec's container
#: environment values (RegisterTaskDefinition): the SDK's loggers stay at INFO or above whatever
#: the function's log level (LogLevel parameter; Lambda sets the root logger from it).
SDK_LOGGERS = ("boto3", "botocore", "s3transfer", "urllib3")


def quiet_sdk_logs() -> None:
    for name in SDK_LOGGERS:
        sdk_logger = logging.getLogger(name)
        # The logger's own level, not the effective one: a root logger lowered to DEBUG later
        # (LogLevel=DEBUG) must not reach it either.
        if sdk_logger.level < logging.INFO:  # NOTSET (0) included
            sdk_logger.setLevel(logging.INFO)


class Clients:
    """Lazily created clients of one boto3 session (created one at a time: a session is not
    thread-safe; the clients are)."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        quiet_sdk_logs()
        self._session = session or boto3.session.Session()
        # Batch steps first use a client from their worker threads; a session is not thread-safe.
        self._lock = threading.Lock()

    def _client(self, service: str, config: Config = BOTO_CONFIG) -> Any:
        with self._lock:
            client = self._session.client(service, config=config)  # type: ignore[call-overload]
        if service in ("ecs", "servicediscovery"):
            from envbuild_lambda.pacing import pace_reads

            pace_reads(client, service)
        return client

    @cached_property
    def ecs_once(self) -> ECSClient:
        """ECS without SDK retries, for RegisterTaskDefinition (see ONCE_CONFIG)."""
        return self._client("ecs", ONCE_CONFIG)  # type: ignore[no-any-return]

    @cached_property
    def servicediscovery(self) -> ServiceDiscoveryClient:
        return self._client("servicediscovery")  # type: ignore[no-any-return]

    @cached_property
    def ecs(self) -> ECSClient:
        return self._client("ecs")  # type: ignore[no-any-return]

    @cached_property
    def logs(self) -> CloudWatchLogsClient:
        return self._client("logs")  # type: ignore[no-any-return]

    @cached_property
    def route53(self) -> Route53Client:
        return self._client("route53")  # type: ignore[no-any-return]

    @cached_property
    def ec2(self) -> EC2Client:
        return self._client("ec2")  # type: ignore[no-any-return]

    @cached_property
    def iam(self) -> IAMClient:
        return self._client("iam")  # type: ignore[no-any-return]

    @cached_property
    def ssm(self) -> Any:  # no mypy_boto3_ssm stubs pinned: typed Any
        return self._client("ssm")

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        return self._client("secretsmanager")  # type: ignore[no-any-return]

    @cached_property
    def autoscaling(self) -> Any:  # Application Auto Scaling; no stubs pinned: typed Any
        return self._client("application-autoscaling")

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self._client("dynamodb")  # type: ignore[no-any-return]

    @cached_property
    def stepfunctions(self) -> SFNClient:
        return self._client("stepfunctions")  # type: ignore[no-any-return]


_shared: dict[tuple[str, str], Clients] = {}
_shared_lock = threading.Lock()


def get_clients() -> Clients:
    """The process's clients, made on first use and reused by later invocations (warm starts).

    One set for every thread: boto3 clients are thread-safe, and ``Clients`` serialises their
    creation on its one session (the emulator runs Map iterations on many threads). Keyed by the
    endpoint and region the SDK reads from the environment, which are fixed in Lambda.
    """
    key = (
        os.environ.get("AWS_ENDPOINT_URL", ""),
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""),
    )
    with _shared_lock:
        clients = _shared.get(key)
        if clients is None:
            clients = _shared[key] = Clients()
        return clients


@dataclass(frozen=True)
class Caller:
    """Partition, region and account of the running function, read from its own ARN."""

    partition: str
    region: str
    account_id: str

    @classmethod
    def from_function_arn(cls, arn: str) -> Caller:
        parts = arn.split(":")
        if len(parts) < 7 or parts[0] != "arn" or parts[2] != "lambda":
            raise ValueError(f"not a Lambda function ARN: {arn!r}")
        return cls(partition=parts[1], region=parts[3], account_id=parts[4])

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account_id}:{resource}"
