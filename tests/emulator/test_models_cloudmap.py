"""Cloud Map as AWS documents it: asynchronous operations, hosted zones, filters, uniqueness."""

from __future__ import annotations

from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from envbuild_emulator.models import Latencies, World

from .conftest import Clients, Network


def _operation(aws: Clients, operation_id: str) -> dict[str, Any]:
    return dict(aws.sd.get_operation(OperationId=operation_id)["Operation"])


def _member(error: ClientError, name: str) -> Any:
    """A modelled member of an error (botocore puts them next to "Error")."""
    return cast(dict[str, Any], error.response)[name]


def _zone_of(aws: Clients, namespace_id: str) -> str:
    namespace = aws.sd.get_namespace(Id=namespace_id)["Namespace"]
    return str(namespace["Properties"]["DnsProperties"]["HostedZoneId"])


def test_namespace_operation_goes_submitted_pending_success(
    world: World, aws: Clients, network: Network
) -> None:
    operation_id = aws.sd.create_private_dns_namespace(Name="app.local", Vpc=network.vpc_id)[
        "OperationId"
    ]
    submitted = _operation(aws, operation_id)
    assert submitted["Status"] == "SUBMITTED"
    assert submitted["Type"] == "CREATE_NAMESPACE"
    namespace_id = submitted["Targets"]["NAMESPACE"]

    # not visible before the operation succeeded
    assert aws.sd.list_namespaces()["Namespaces"] == []
    with pytest.raises(ClientError) as caught:
        aws.sd.get_namespace(Id=namespace_id)
    assert caught.value.response["Error"]["Code"] == "NamespaceNotFound"

    world.clock.advance(1)
    assert _operation(aws, operation_id)["Status"] == "PENDING"
    world.clock.advance(58)
    assert _operation(aws, operation_id)["Status"] == "PENDING"
    world.clock.advance(1)  # 60 s after the request
    done = _operation(aws, operation_id)
    assert done["Status"] == "SUCCESS"
    assert done["UpdateDate"] > done["CreateDate"]
    assert [ns["Id"] for ns in aws.sd.list_namespaces()["Namespaces"]] == [namespace_id]
    assert aws.sd.get_namespace(Id=namespace_id)["Namespace"]["Name"] == "app.local"


def test_list_operations_shows_progress_and_honours_filters(
    world: World, aws: Clients, network: Network
) -> None:
    operation_id = aws.sd.create_private_dns_namespace(Name="app.local", Vpc=network.vpc_id)[
        "OperationId"
    ]
    listed = aws.sd.list_operations()["Operations"]
    assert {"Id": operation_id, "Status": "SUBMITTED"} in listed
    pending = aws.sd.list_operations(
        Filters=[{"Name": "STATUS", "Values": ["SUCCESS"], "Condition": "EQ"}]
    )["Operations"]
    assert pending == []
    world.clock.advance(60)
    success = aws.sd.list_operations(
        Filters=[{"Name": "STATUS", "Values": ["SUCCESS", "FAIL"], "Condition": "IN"}]
    )["Operations"]
    assert [op["Id"] for op in success] == [operation_id]
    namespace_id = _operation(aws, operation_id)["Targets"]["NAMESPACE"]
    by_namespace = aws.sd.list_operations(
        Filters=[{"Name": "NAMESPACE_ID", "Values": [namespace_id]}]
    )["Operations"]
    assert [op["Id"] for op in by_namespace] == [operation_id]
    by_type = aws.sd.list_operations(
        Filters=[{"Name": "TYPE", "Values": ["REGISTER_INSTANCE"], "Condition": "EQ"}]
    )["Operations"]
    assert by_type == []
    with pytest.raises(ClientError) as caught:
        aws.sd.list_operations(
            Filters=[{"Name": "STATUS", "Values": ["X"], "Condition": "BETWEEN"}]
        )
    assert caught.value.response["Error"]["Code"] == "InvalidInput"


def test_injected_failure_ends_fail_and_leaves_nothing_behind(
    world: World, aws: Clients, network: Network
) -> None:
    world.faults.fail_namespace_operation(
        "app.local", error_code="CANNOT_CREATE_HOSTED_ZONE", message="zone quota exceeded"
    )
    operation_id = aws.sd.create_private_dns_namespace(Name="app.local", Vpc=network.vpc_id)[
        "OperationId"
    ]
    world.clock.advance(60)
    failed = _operation(aws, operation_id)
    assert failed["Status"] == "FAIL"
    assert failed["ErrorCode"] == "CANNOT_CREATE_HOSTED_ZONE"
    assert failed["ErrorMessage"] == "zone quota exceeded"
    assert aws.sd.list_namespaces()["Namespaces"] == []
    assert aws.route53.list_hosted_zones()["HostedZones"] == []

    # the fault was for the next creation only: a new request succeeds
    retry = aws.sd.create_private_dns_namespace(Name="app.local", Vpc=network.vpc_id)
    world.clock.advance(60)
    assert _operation(aws, retry["OperationId"])["Status"] == "SUCCESS"


def test_same_creator_request_id_returns_the_same_operation(
    world: World, aws: Clients, network: Network
) -> None:
    first = aws.sd.create_private_dns_namespace(
        Name="app.local", Vpc=network.vpc_id, CreatorRequestId="build-42"
    )["OperationId"]
    again = aws.sd.create_private_dns_namespace(
        Name="app.local", Vpc=network.vpc_id, CreatorRequestId="build-42"
    )["OperationId"]
    assert again == first
    world.clock.advance(60)
    after = aws.sd.create_private_dns_namespace(
        Name="app.local", Vpc=network.vpc_id, CreatorRequestId="build-42"
    )["OperationId"]
    assert after == first
    assert len(aws.sd.list_namespaces()["Namespaces"]) == 1


def test_second_request_while_in_progress_is_a_duplicate(
    world: World, aws: Clients, network: Network
) -> None:
    first = aws.sd.create_private_dns_namespace(Name="app.local", Vpc=network.vpc_id)
    with pytest.raises(ClientError) as caught:
        aws.sd.create_private_dns_namespace(Name="app.local", Vpc=network.vpc_id)
    assert caught.value.response["Error"]["Code"] == "DuplicateRequest"
    assert _member(caught.value, "DuplicateOperationId") == first["OperationId"]


def test_several_namespaces_in_one_vpc(
    world: World, aws: Clients, network: Network, make_namespace: Any
) -> None:
    first = make_namespace("one.local", network.vpc_id)
    second = make_namespace("two.local", network.vpc_id)
    names = {ns["Name"]: ns["Id"] for ns in aws.sd.list_namespaces()["Namespaces"]}
    assert names == {"one.local": first, "two.local": second}


def test_same_name_in_same_vpc_already_exists(
    world: World, aws: Clients, network: Network, make_namespace: Any
) -> None:
    namespace_id = make_namespace("app.local", network.vpc_id)
    with pytest.raises(ClientError) as caught:
        aws.sd.create_private_dns_namespace(Name="app.local", Vpc=network.vpc_id)
    assert caught.value.response["Error"]["Code"] == "NamespaceAlreadyExists"
    assert _member(caught.value, "NamespaceId") == namespace_id
    # another VPC may use the same name
    other_vpc = aws.ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    make_namespace("app.local", other_vpc)


def test_conflicting_private_zone_in_the_vpc_fails_the_operation(
    world: World, aws: Clients, network: Network
) -> None:
    aws.route53.create_hosted_zone(
        Name="app.local",
        CallerReference="manual",
        HostedZoneConfig={"PrivateZone": True},
        VPC={"VPCRegion": "eu-west-1", "VPCId": network.vpc_id},
    )
    operation_id = aws.sd.create_private_dns_namespace(Name="app.local", Vpc=network.vpc_id)[
        "OperationId"
    ]
    world.clock.advance(60)
    failed = _operation(aws, operation_id)
    assert failed["Status"] == "FAIL"
    assert failed["ErrorCode"] == "CANNOT_CREATE_HOSTED_ZONE"
    assert "ConflictingDomainExists" in failed["ErrorMessage"]


def test_private_hosted_zone_is_named_after_the_namespace_and_associated_with_the_vpc(
    world: World, aws: Clients, network: Network, make_namespace: Any
) -> None:
    namespace_id = make_namespace("app.local", network.vpc_id)
    zone = aws.route53.get_hosted_zone(Id=_zone_of(aws, namespace_id))
    assert zone["HostedZone"]["Name"] == "app.local."
    assert zone["HostedZone"]["Config"]["PrivateZone"] is True
    assert zone["VPCs"] == [{"VPCRegion": "eu-west-1", "VPCId": network.vpc_id}]
    by_vpc = aws.route53.list_hosted_zones_by_vpc(VPCId=network.vpc_id, VPCRegion="eu-west-1")
    assert [z["Name"] for z in by_vpc["HostedZoneSummaries"]] == ["app.local."]


def test_namespace_filters(
    world: World, aws: Clients, network: Network, make_namespace: Any
) -> None:
    private_id = make_namespace("app.local", network.vpc_id)
    http_op = aws.sd.create_http_namespace(Name="api-http")["OperationId"]
    world.clock.advance(60)
    http_id = _operation(aws, http_op)["Targets"]["NAMESPACE"]

    def ids(filters: list[dict[str, Any]]) -> list[str]:
        return [ns["Id"] for ns in aws.sd.list_namespaces(Filters=filters)["Namespaces"]]

    assert ids([{"Name": "TYPE", "Values": ["DNS_PRIVATE"]}]) == [private_id]
    assert ids([{"Name": "TYPE", "Values": ["HTTP"], "Condition": "EQ"}]) == [http_id]
    assert ids([{"Name": "NAME", "Values": ["app.local"]}]) == [private_id]
    assert ids([{"Name": "NAME", "Values": ["api"], "Condition": "BEGINS_WITH"}]) == [http_id]
    summary = aws.sd.list_namespaces(Filters=[{"Name": "NAME", "Values": ["app.local"]}])
    assert summary["Namespaces"][0]["ServiceCount"] == 0
    paged = aws.sd.list_namespaces(MaxResults=1)
    assert len(paged["Namespaces"]) == 1
    assert "NextToken" in paged
    rest = aws.sd.list_namespaces(MaxResults=1, NextToken=paged["NextToken"])
    assert {paged["Namespaces"][0]["Id"], rest["Namespaces"][0]["Id"]} == {private_id, http_id}


def test_service_filters_and_unique_names(
    world: World, aws: Clients, network: Network, make_namespace: Any
) -> None:
    one = make_namespace("one.local", network.vpc_id)
    two = make_namespace("two.local", network.vpc_id)
    dns = {"DnsRecords": [{"Type": "A", "TTL": 60}]}
    web_one = aws.sd.create_service(Name="web", NamespaceId=one, DnsConfig=dns)["Service"]
    web_two = aws.sd.create_service(Name="web", NamespaceId=two, DnsConfig=dns)["Service"]
    assert web_one["DnsConfig"]["RoutingPolicy"] == "MULTIVALUE"

    with pytest.raises(ClientError) as caught:
        aws.sd.create_service(Name="web", NamespaceId=one, DnsConfig=dns)
    assert caught.value.response["Error"]["Code"] == "ServiceAlreadyExists"
    assert _member(caught.value, "ServiceId") == web_one["Id"]

    # a retry with the same CreatorRequestId returns the service instead of failing
    api = aws.sd.create_service(Name="api", NamespaceId=one, CreatorRequestId="req-1")["Service"]
    again = aws.sd.create_service(Name="api", NamespaceId=one, CreatorRequestId="req-1")["Service"]
    assert again["Id"] == api["Id"]

    listed = aws.sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [two]}])
    assert [s["Id"] for s in listed["Services"]] == [web_two["Id"]]
    listed = aws.sd.list_services(
        Filters=[{"Name": "NAMESPACE_ID", "Values": [one], "Condition": "EQ"}]
    )
    assert sorted(s["Name"] for s in listed["Services"]) == ["api", "web"]
    assert len(aws.sd.list_services()["Services"]) == 3

    with pytest.raises(ClientError) as caught:
        aws.sd.create_service(Name="db", NamespaceId="ns-doesnotexist")
    assert caught.value.response["Error"]["Code"] == "NamespaceNotFound"


def test_register_and_deregister_instance_are_operations_that_maintain_a_records(
    world: World, aws: Clients, network: Network, make_namespace: Any
) -> None:
    namespace_id = make_namespace("app.local", network.vpc_id)
    service = aws.sd.create_service(
        Name="web",
        NamespaceId=namespace_id,
        DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 15}]},
        HealthCheckCustomConfig={"FailureThreshold": 3},
    )["Service"]
    assert service["HealthCheckCustomConfig"] == {"FailureThreshold": 1}
    zone_id = _zone_of(aws, namespace_id)

    def a_records() -> list[dict[str, Any]]:
        sets = aws.route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        return [s for s in sets if s["Type"] == "A"]

    register = aws.sd.register_instance(
        ServiceId=service["Id"], InstanceId="i-1", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.10"}
    )["OperationId"]
    assert _operation(aws, register)["Status"] == "SUBMITTED"
    assert aws.sd.list_instances(ServiceId=service["Id"])["Instances"] == []
    world.clock.advance(world.latencies.service_operation_seconds)
    done = _operation(aws, register)
    assert done["Status"] == "SUCCESS"
    assert done["Targets"] == {"INSTANCE": "i-1", "SERVICE": service["Id"]}
    assert [i["Id"] for i in aws.sd.list_instances(ServiceId=service["Id"])["Instances"]] == ["i-1"]
    assert a_records() == [
        {
            "Name": "web.app.local.",
            "Type": "A",
            "SetIdentifier": "i-1",
            "MultiValueAnswer": True,
            "TTL": 15,
            "ResourceRecords": [{"Value": "10.0.1.10"}],
        }
    ]
    by_service = aws.sd.list_operations(
        Filters=[{"Name": "SERVICE_ID", "Values": [service["Id"]]}]
    )["Operations"]
    assert [op["Id"] for op in by_service] == [register]

    # a service with instances cannot be deleted
    with pytest.raises(ClientError) as caught:
        aws.sd.delete_service(Id=service["Id"])
    assert caught.value.response["Error"]["Code"] == "ResourceInUse"

    deregister = aws.sd.deregister_instance(ServiceId=service["Id"], InstanceId="i-1")
    world.clock.advance(world.latencies.service_operation_seconds)
    assert _operation(aws, deregister["OperationId"])["Status"] == "SUCCESS"
    assert aws.sd.list_instances(ServiceId=service["Id"])["Instances"] == []
    assert a_records() == []
    aws.sd.delete_service(Id=service["Id"])


def test_register_instance_without_ipv4_for_an_a_record_service_is_invalid(
    world: World, aws: Clients, network: Network, make_namespace: Any
) -> None:
    namespace_id = make_namespace("app.local", network.vpc_id)
    service = aws.sd.create_service(
        Name="web", NamespaceId=namespace_id, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 60}]}
    )["Service"]
    with pytest.raises(ClientError) as caught:
        aws.sd.register_instance(ServiceId=service["Id"], InstanceId="i-1", Attributes={"a": "b"})
    assert caught.value.response["Error"]["Code"] == "InvalidInput"


def test_delete_namespace_with_services_is_refused_then_deletes_the_zone(
    world: World, aws: Clients, network: Network, make_namespace: Any
) -> None:
    namespace_id = make_namespace("app.local", network.vpc_id)
    service = aws.sd.create_service(Name="web", NamespaceId=namespace_id)["Service"]
    with pytest.raises(ClientError) as caught:
        aws.sd.delete_namespace(Id=namespace_id)
    assert caught.value.response["Error"]["Code"] == "ResourceInUse"
    aws.sd.delete_service(Id=service["Id"])
    operation_id = aws.sd.delete_namespace(Id=namespace_id)["OperationId"]
    assert _operation(aws, operation_id)["Type"] == "DELETE_NAMESPACE"
    world.clock.advance(world.latencies.service_operation_seconds)
    assert _operation(aws, operation_id)["Status"] == "SUCCESS"
    assert aws.sd.list_namespaces()["Namespaces"] == []
    assert aws.route53.list_hosted_zones()["HostedZones"] == []


def test_update_operations_take_service_operation_seconds(
    world: World, aws: Clients, network: Network, make_namespace: Any
) -> None:
    namespace_id = make_namespace("app.local", network.vpc_id)
    service = aws.sd.create_service(
        Name="web", NamespaceId=namespace_id, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 60}]}
    )["Service"]
    operation_id = aws.sd.update_service(
        Id=service["Id"], Service={"DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 30}]}}
    )["OperationId"]
    assert _operation(aws, operation_id)["Status"] == "SUBMITTED"
    world.clock.advance(world.latencies.service_operation_seconds)
    assert _operation(aws, operation_id)["Status"] == "SUCCESS"


@pytest.mark.parametrize("latencies", [Latencies(discovery_propagation_seconds=5.0)])
def test_discover_instances_and_route53_lag_the_control_plane(
    world: World, aws: Clients, network: Network, make_namespace: Any, latencies: Latencies
) -> None:
    """Issue 15 item 5: with ``discovery_propagation_seconds`` a registered instance is in
    ListInstances at once, in DiscoverInstances and the hosted zone only after the lag."""
    namespace_id = make_namespace("lag.local", network.vpc_id)
    service = aws.sd.create_service(
        Name="web", NamespaceId=namespace_id, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 15}]}
    )["Service"]
    zone_id = _zone_of(aws, namespace_id)

    def discovered() -> list[str]:
        answer = aws.sd.discover_instances(NamespaceName="lag.local", ServiceName="web")
        return [i["InstanceId"] for i in answer["Instances"]]

    def a_records() -> list[str]:
        sets = aws.route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        return [r["Value"] for s in sets if s["Type"] == "A" for r in s["ResourceRecords"]]

    aws.sd.register_instance(
        ServiceId=service["Id"], InstanceId="i-1", Attributes={"AWS_INSTANCE_IPV4": "10.0.1.10"}
    )
    world.clock.advance(world.latencies.service_operation_seconds)
    assert [i["Id"] for i in aws.sd.list_instances(ServiceId=service["Id"])["Instances"]] == ["i-1"]
    assert (discovered(), a_records()) == ([], [])
    world.clock.advance(4.9)
    assert (discovered(), a_records()) == ([], [])
    world.clock.advance(0.1)
    assert (discovered(), a_records()) == (["i-1"], ["10.0.1.10"])
