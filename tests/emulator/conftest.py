"""Fixtures for the emulator model tests: moto in-process, a World on a scale-0 clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from envbuild_emulator.clock import Clock
from envbuild_emulator.models import Latencies, World

REGION = "eu-west-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # the EC2 backend would otherwise load thousands of AMIs per test
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ECS_SERVICE_RUNNING"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def latencies() -> Latencies:
    return Latencies()


@pytest.fixture
def world(aws_env: None, latencies: Latencies) -> Iterator[World]:
    world = World(Clock(scale=0.0), latencies)
    with mock_aws(), world:
        yield world


@dataclass
class Clients:
    ec2: Any
    sd: Any
    route53: Any
    ecs: Any


@pytest.fixture(scope="session")
def boto_session() -> boto3.session.Session:
    # one session for all tests: its loader caches the service models (client creation is slow)
    return boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def aws(world: World, boto_session: boto3.session.Session) -> Clients:
    session = boto_session
    return Clients(
        ec2=session.client("ec2"),
        sd=session.client("servicediscovery"),
        route53=session.client("route53"),
        ecs=session.client("ecs"),
    )


@dataclass
class Network:
    vpc_id: str
    subnets: dict[str, tuple[str, str]]  # subnet id -> (cidr, availability zone)
    security_group: str


@pytest.fixture
def network(aws: Clients) -> Network:
    vpc_id = aws.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets: dict[str, tuple[str, str]] = {}
    for cidr, zone in (("10.0.1.0/24", f"{REGION}a"), ("10.0.2.0/24", f"{REGION}b")):
        subnet = aws.ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)
        subnets[subnet["Subnet"]["SubnetId"]] = (cidr, zone)
    group = aws.ec2.create_security_group(GroupName="ecs", Description="ecs", VpcId=vpc_id)
    return Network(vpc_id, subnets, group["GroupId"])


@pytest.fixture
def make_namespace(world: World, aws: Clients) -> Any:
    """Create a private DNS namespace and let its operation finish; returns the namespace id."""

    def make(name: str, vpc_id: str) -> str:
        operation_id = aws.sd.create_private_dns_namespace(Name=name, Vpc=vpc_id)["OperationId"]
        world.clock.advance(world.latencies.namespace_operation_seconds)
        operation = aws.sd.get_operation(OperationId=operation_id)["Operation"]
        assert operation["Status"] == "SUCCESS", operation
        return str(operation["Targets"]["NAMESPACE"])

    return make
