"""Fixtures of the unit tests of functions/: fake credentials, a fresh moto account per test,
the workshop spec with its ${VARS} filled, a fake LambdaContext, and a helper to override single
client methods with a stubbed AWS answer where moto's answer differs from AWS."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from envbuild_lambda import aws as aws_module
from envbuild_lambda.aws import Caller, Clients
from envbuild_lambda.settings import PollSchedule, get_settings
from envbuild_lambda.spec import EnvironmentSpec, normalize, parse_spec

ROOT = Path(__file__).resolve().parents[2]
WORKSHOP = ROOT / "events" / "workshop.json"

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:x"

#: Syntactically valid ids for the spec-only tests (no AWS behind them).
STATIC_VARS = {
    "VPC_ID": "vpc-0a1b2c3d4e5f60718",
    "CLUSTER_NAME": "workshop-cluster",
    "PRIVATE_SUBNET_1": "subnet-0a1b2c3d4e5f60001",
    "PRIVATE_SUBNET_2": "subnet-0a1b2c3d4e5f60002",
    "ECS_SG": "sg-0a1b2c3d4e5f60003",
}


#: One botocore session for the whole run: it caches the service models (a new one per test is slow).
BOTOCORE = botocore.session.Session()


def session() -> boto3.session.Session:
    return boto3.session.Session(botocore_session=BOTOCORE, region_name=REGION)


def fill(template: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: variables[m.group(1)], template)


def workshop_spec(variables: dict[str, str] | None = None) -> dict[str, Any]:
    """events/workshop.json with its ${VARS} replaced (a fresh dict each call)."""
    return json.loads(fill(WORKSHOP.read_text(), variables or STATIC_VARS))


def client_error(code: str, message: str = "", operation: str = "Op", **extra: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **extra}, operation)


class Override:
    """A client whose named methods answer as given (a stubbed AWS answer); the rest go to ``client``."""

    def __init__(self, client: Any, **methods: Callable[..., Any]) -> None:
        self._client = client
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        if name in self._methods:
            return self._methods[name]
        return getattr(self._client, name)


@dataclass
class FakeContext:
    """What powertools and the handlers read from a LambdaContext."""

    function_name: str = "x"
    function_version: str = "$LATEST"
    invoked_function_arn: str = FUNCTION_ARN
    memory_limit_in_mb: int = 256
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"
    log_group_name: str = "/aws/lambda/x"
    log_stream_name: str = "2026/01/01/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region, no endpoint or profile leaking in; fresh settings and clients."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith(("NAMESPACE_POLL_", "SERVICES_POLL_", "ENVBUILD_", "MOTO_ECS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    # moto: no default AMIs in each fresh EC2 backend (they make every test that touches EC2 slow)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "envbuild")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "envbuild")
    get_settings.cache_clear()
    aws_module._shared.clear()
    yield
    get_settings.cache_clear()
    aws_module._shared.clear()


@pytest.fixture
def mocked_aws() -> Iterator[None]:
    """A fresh, empty moto account for this test, with the emulator's IAM SimulatePrincipalPolicy
    (envbuild_emulator.models.iam: moto lacks it; the preflight asks it)."""
    from envbuild_emulator.models.iam import install
    from envbuild_emulator.moto_internals import Patcher

    patcher = Patcher()
    install(patcher)
    try:
        with mock_aws():
            yield
    finally:
        patcher.restore()


@pytest.fixture
def clients(mocked_aws: None) -> Clients:
    return Clients(session())


@pytest.fixture
def caller() -> Caller:
    return Caller(partition="aws", region=REGION, account_id=ACCOUNT)


@pytest.fixture
def schedule() -> PollSchedule:
    return PollSchedule(first_seconds=5, interval_seconds=10, max_attempts=20)


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


@dataclass(frozen=True)
class Prerequisites:
    """The workshop's prerequisites made in the mocked account."""

    vpc_id: str
    subnets: tuple[str, str]
    security_group: str
    cluster: str

    def variables(self) -> dict[str, str]:
        return {
            "VPC_ID": self.vpc_id,
            "CLUSTER_NAME": self.cluster,
            "PRIVATE_SUBNET_1": self.subnets[0],
            "PRIVATE_SUBNET_2": self.subnets[1],
            "ECS_SG": self.security_group,
        }


@pytest.fixture
def prerequisites(mocked_aws: None) -> Prerequisites:
    ec2 = session().client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = tuple(
        ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}"
        )["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    )
    sg = ec2.create_security_group(GroupName="ecs-sg", Description="ecs tasks", VpcId=vpc_id)[
        "GroupId"
    ]
    session().client("ecs").create_cluster(clusterName="workshop-cluster")
    return Prerequisites(
        vpc_id=vpc_id,
        subnets=(subnets[0], subnets[1]),
        security_group=sg,
        cluster="workshop-cluster",
    )


@pytest.fixture
def cluster(mocked_aws: None) -> str:
    session().client("ecs").create_cluster(clusterName=STATIC_VARS["CLUSTER_NAME"])
    return STATIC_VARS["CLUSTER_NAME"]


@pytest.fixture
def spec(cluster: str) -> EnvironmentSpec:
    """The workshop spec (static network ids, the cluster made), normalised as ValidateSpec returns it.

    moto's Cloud Map and Route 53 do not look the VPC up, so no EC2 resources are needed (they are
    slow to make); the ECS service tests use ``network_spec``.
    """
    return normalize(parse_spec(workshop_spec()), partition="aws", account_id=ACCOUNT)


@pytest.fixture
def network_spec(prerequisites: Prerequisites) -> EnvironmentSpec:
    """The workshop spec on real mocked VPC, subnets, security group and cluster."""
    return normalize(
        parse_spec(workshop_spec(prerequisites.variables())), partition="aws", account_id=ACCOUNT
    )


@pytest.fixture
def static_spec() -> dict[str, Any]:
    return copy.deepcopy(workshop_spec())


RECORDS = "records"


@pytest.fixture
def records(clients: Clients, monkeypatch: pytest.MonkeyPatch) -> str:
    """The environment records table, as template.yaml makes it."""
    clients.dynamodb.create_table(
        TableName=RECORDS,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "environment", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "environment", "KeyType": "HASH"}],
    )
    monkeypatch.setenv("RECORD_TABLE_NAME", RECORDS)
    get_settings.cache_clear()
    return RECORDS
