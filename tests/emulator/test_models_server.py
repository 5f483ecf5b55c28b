"""The models in server mode: moto's ThreadedMotoServer, boto3 over HTTP."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from envbuild_emulator.clock import Clock
from envbuild_emulator.models import World


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(request).close()  # noqa: S310 - the local test server
        server.stop()


def test_models_work_through_the_server(server: str) -> None:
    world = World(Clock())
    session = boto3.session.Session(
        region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    ec2 = session.client("ec2", endpoint_url=server)
    sd = session.client("servicediscovery", endpoint_url=server)
    ecs = session.client("ecs", endpoint_url=server)
    route53 = session.client("route53", endpoint_url=server)
    with world:
        vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
        group_id = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc_id)[
            "GroupId"
        ]
        operation_id = sd.create_private_dns_namespace(Name="srv.local", Vpc=vpc_id)["OperationId"]
        assert sd.get_operation(OperationId=operation_id)["Operation"]["Status"] == "SUBMITTED"
        world.clock.advance(60)
        operation = sd.get_operation(OperationId=operation_id)["Operation"]
        assert operation["Status"] == "SUCCESS"
        namespace_id = operation["Targets"]["NAMESPACE"]
        registry = sd.create_service(
            Name="api",
            NamespaceId=namespace_id,
            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]},
        )["Service"]
        ecs.create_cluster(clusterName="c")
        ecs.register_task_definition(
            family="api",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "api", "image": "httpd"}],
        )
        ecs.create_service(
            cluster="c",
            serviceName="api-service",
            taskDefinition="api",
            desiredCount=1,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": [subnet_id], "securityGroups": [group_id]}
            },
            serviceRegistries=[{"registryArn": registry["Arn"]}],
        )
        world.clock.advance(
            world.latencies.task_start_seconds + world.latencies.registration_seconds
        )
        service = ecs.describe_services(cluster="c", services=["api-service"])["services"][0]
        assert service["runningCount"] == 1
        found = sd.discover_instances(NamespaceName="srv.local", ServiceName="api")["Instances"]
        assert len(found) == 1
        ip = found[0]["Attributes"]["AWS_INSTANCE_IPV4"]
        assert ip.startswith("10.9.1.")
        zone_id = sd.get_namespace(Id=namespace_id)["Namespace"]["Properties"]["DnsProperties"][
            "HostedZoneId"
        ]
        records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        assert [r["ResourceRecords"] for r in records if r["Type"] == "A"] == [[{"Value": ip}]]
        zone = route53.get_hosted_zone(Id=zone_id)
        assert zone["VPCs"] == [{"VPCRegion": "eu-west-1", "VPCId": vpc_id}]
