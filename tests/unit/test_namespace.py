"""Creating or adopting the private DNS namespace and following its Cloud Map operation
(functions/envbuild_lambda/steps/namespace.py), on moto, with stubbed answers where moto differs
from AWS (moto's operations are SUCCESS at once and its hosted zones are associated with no VPC)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from envbuild_lambda.aws import Clients
from envbuild_lambda.errors import (
    AwsRequestFailed,
    AwsThrottled,
    NamespaceConflict,
    NamespaceOperationFailed,
    ResourceNotFound,
)
from envbuild_lambda.settings import PollSchedule
from envbuild_lambda.spec import EnvironmentSpec
from envbuild_lambda.state import NamespaceState, Poll
from envbuild_lambda.steps import namespace

from .conftest import REGION, Override, client_error, session

OPERATION_ID = "abcdefghijklmnopqrstuvwxyz012345-abcdefgh"


def make_namespace(
    clients: Clients, name: str, vpc_id: str, associate: bool = True
) -> dict[str, Any]:
    """A namespace made outside envbuild; with ``associate`` its zone is associated with the VPC, as on AWS."""
    sd = clients.servicediscovery
    operation_id = sd.create_private_dns_namespace(Name=name, Vpc=vpc_id)["OperationId"]
    namespace_id = sd.get_operation(OperationId=operation_id)["Operation"]["Targets"]["NAMESPACE"]
    found = sd.get_namespace(Id=namespace_id)["Namespace"]
    if associate:
        clients.route53.associate_vpc_with_hosted_zone(
            HostedZoneId=found["Properties"]["DnsProperties"]["HostedZoneId"],
            VPC={"VPCRegion": REGION, "VPCId": vpc_id},
        )
    return found


def submitted(
    spec: EnvironmentSpec, schedule: PollSchedule, operation_id: str = OPERATION_ID
) -> NamespaceState:
    return NamespaceState(
        name=spec.namespace.name,
        vpcId=spec.namespace.vpcId,
        operationId=operation_id,
        status="SUBMITTED",
        poll=Poll.start(schedule),
    )


def stubbed_servicediscovery(clients: Clients) -> tuple[Clients, Stubber]:
    """Clients whose servicediscovery answers only what the test adds to the Stubber."""
    client = session().client("servicediscovery")
    stubber = Stubber(client)
    clients.servicediscovery = client  # type: ignore[misc]
    return clients, stubber


# --- create_or_adopt -------------------------------------------------------------------------------


def test_creates_the_namespace_when_none_exists(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    state = namespace.create_or_adopt(clients, spec, schedule)
    assert state.status == "SUBMITTED"
    assert state.operationId
    assert state.adopted is False
    assert state.id is None
    assert state.poll == Poll(attempt=0, waitSeconds=5, maxAttempts=20)
    assert (
        state.message
        == f"creating namespace workshop.local: Cloud Map operation {state.operationId} SUBMITTED"
    )
    sd = clients.servicediscovery
    operation = sd.get_operation(OperationId=state.operationId)["Operation"]
    created = sd.get_namespace(Id=operation["Targets"]["NAMESPACE"])["Namespace"]
    assert (created["Name"], created["Type"]) == ("workshop.local", "DNS_PRIVATE")
    assert created["Description"] == "Private DNS namespace for ECS workshop"
    tags = sd.list_tags_for_resource(ResourceARN=created["Arn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "envbuild:environment": "workshop",
        "envbuild:managed": "true",
    }


def test_creation_uses_a_deterministic_creator_request_id(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    build = "arn:aws:states:us-east-1:123456789012:execution:sm:b1"
    state = namespace.create_or_adopt(clients, spec, schedule, build)
    sd = clients.servicediscovery
    namespace_id = sd.get_operation(OperationId=state.operationId)["Operation"]["Targets"][
        "NAMESPACE"
    ]
    token = sd.get_namespace(Id=namespace_id)["Namespace"]["CreatorRequestId"]
    # the same for a retry within the build, another for the next build
    assert token == spec.request_token("namespace", "workshop.local", spec.namespace.vpcId, build)
    assert token != spec.request_token("namespace", "workshop.local", spec.namespace.vpcId, "b2")


def test_adopts_an_existing_namespace_whose_zone_is_associated_with_the_vpc(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    existing = make_namespace(clients, "workshop.local", spec.namespace.vpcId)
    state = namespace.create_or_adopt(clients, spec, schedule)
    assert state.adopted is True
    assert state.status == "SUCCESS"
    assert state.id == existing["Id"]
    assert state.arn == existing["Arn"]
    assert state.hostedZoneId == existing["Properties"]["DnsProperties"]["HostedZoneId"]
    assert state.operationId is None
    assert state.poll == Poll.start(schedule)
    assert (
        state.message
        == f"adopted existing namespace workshop.local ({existing['Id']}) in {spec.namespace.vpcId}"
    )
    assert len(clients.servicediscovery.list_namespaces()["Namespaces"]) == 1


def test_a_namespace_of_the_same_name_in_another_vpc_is_not_adopted(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    other_vpc = "vpc-0ffffffffffffffff"
    make_namespace(clients, "workshop.local", other_vpc)
    state = namespace.create_or_adopt(clients, spec, schedule)
    assert state.adopted is False
    assert state.status == "SUBMITTED"
    names = [(n["Name"]) for n in clients.servicediscovery.list_namespaces()["Namespaces"]]
    assert names == ["workshop.local", "workshop.local"]


def test_a_namespace_of_another_name_is_not_adopted(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    other = make_namespace(clients, "other.local", spec.namespace.vpcId)
    # moto answers ConflictingDomainExists for any second namespace in a VPC; AWS creates it.
    clients.servicediscovery = Override(  # type: ignore[misc]
        clients.servicediscovery,
        create_private_dns_namespace=lambda **kwargs: {"OperationId": OPERATION_ID},
    )
    state = namespace.create_or_adopt(clients, spec, schedule)
    assert (state.adopted, state.status, state.operationId) == (False, "SUBMITTED", OPERATION_ID)
    assert state.id != other["Id"]


def test_duplicate_request_follows_the_running_operation(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    def duplicate(**kwargs: Any) -> None:
        raise client_error(
            "DuplicateRequest",
            "operation already running",
            "CreatePrivateDnsNamespace",
            DuplicateOperationId="dup-operation-1",
        )

    clients.servicediscovery = Override(
        clients.servicediscovery, create_private_dns_namespace=duplicate
    )  # type: ignore[misc]
    state = namespace.create_or_adopt(clients, spec, schedule)
    assert (state.status, state.operationId, state.adopted) == (
        "SUBMITTED",
        "dup-operation-1",
        False,
    )


def test_duplicate_request_without_an_operation_id_fails(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    def duplicate(**kwargs: Any) -> None:
        raise client_error(
            "DuplicateRequest", "operation already running", "CreatePrivateDnsNamespace"
        )

    clients.servicediscovery = Override(
        clients.servicediscovery, create_private_dns_namespace=duplicate
    )  # type: ignore[misc]
    with pytest.raises(
        AwsRequestFailed, match=r"CreatePrivateDnsNamespace workshop\.local: DuplicateRequest"
    ):
        namespace.create_or_adopt(clients, spec, schedule)


def test_namespace_already_exists_meanwhile_is_adopted(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    """Another build created the namespace between our ListNamespaces and CreatePrivateDnsNamespace."""
    real = Clients(session())
    made: dict[str, Any] = {}

    def raced(**kwargs: Any) -> None:
        made.update(make_namespace(real, kwargs["Name"], kwargs["Vpc"]))
        raise client_error("NamespaceAlreadyExists", "exists", "CreatePrivateDnsNamespace")

    clients.servicediscovery = Override(real.servicediscovery, create_private_dns_namespace=raced)  # type: ignore[misc]
    state = namespace.create_or_adopt(clients, spec, schedule)
    assert (state.adopted, state.status, state.id) == (True, "SUCCESS", made["Id"])
    assert state.poll == Poll.start(schedule)


def test_namespace_already_exists_in_another_vpc_fails(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    def exists(**kwargs: Any) -> None:
        raise client_error("NamespaceAlreadyExists", "exists", "CreatePrivateDnsNamespace")

    clients.servicediscovery = Override(
        clients.servicediscovery, create_private_dns_namespace=exists
    )  # type: ignore[misc]
    with pytest.raises(
        AwsRequestFailed,
        match=r"CreatePrivateDnsNamespace workshop\.local in vpc-\w+: NamespaceAlreadyExists",
    ):
        namespace.create_or_adopt(clients, spec, schedule)


def test_conflicting_domain_raises_namespace_conflict_naming_name_and_vpc(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    stubber.add_response("list_namespaces", {"Namespaces": []})
    stubber.add_client_error(
        "create_private_dns_namespace",
        service_error_code="ConflictingDomainExists",
        service_message="The domain workshop.local conflicts with local",
    )
    with stubber, pytest.raises(NamespaceConflict) as caught:
        namespace.create_or_adopt(clients, spec, schedule)
    assert str(caught.value) == (
        f"CreatePrivateDnsNamespace workshop.local in {spec.namespace.vpcId}: ConflictingDomainExists:"
        " The domain workshop.local conflicts with local"
    )
    stubber.assert_no_pending_responses()


def test_throttled_listing_raises_aws_throttled(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    stubber.add_client_error(
        "list_namespaces", service_error_code="ThrottlingException", service_message="Rate exceeded"
    )
    with (
        stubber,
        pytest.raises(AwsThrottled, match="ListNamespaces: ThrottlingException: Rate exceeded"),
    ):
        namespace.create_or_adopt(clients, spec, schedule)


# --- check_operation -------------------------------------------------------------------------------


def test_check_operation_success_returns_the_namespace_details(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    started = namespace.create_or_adopt(clients, spec, schedule)
    done = namespace.check_operation(clients, started, schedule)
    created = clients.servicediscovery.list_namespaces()["Namespaces"][0]
    assert done.status == "SUCCESS"
    assert done.id == created["Id"]
    assert done.arn == created["Arn"]
    assert done.hostedZoneId == created["Properties"]["DnsProperties"]["HostedZoneId"]
    assert done.operationId == started.operationId
    assert done.poll.attempt == 1
    assert done.message == f"namespace workshop.local created ({created['Id']})"
    assert (done.name, done.vpcId, done.adopted) == ("workshop.local", spec.namespace.vpcId, False)


def test_check_operation_fail_raises_with_error_code_and_message(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    stubber.add_response(
        "get_operation",
        {
            "Operation": {
                "Id": OPERATION_ID,
                "Type": "CREATE_NAMESPACE",
                "Status": "FAIL",
                "ErrorCode": "CANNOT_CREATE_HOSTED_ZONE",
                "ErrorMessage": "The VPC does not have DNS support enabled",
            }
        },
        {"OperationId": OPERATION_ID},
    )
    with stubber, pytest.raises(NamespaceOperationFailed) as caught:
        namespace.check_operation(clients, submitted(spec, schedule), schedule)
    message = str(caught.value)
    assert OPERATION_ID in message
    assert "workshop.local" in message
    assert message.endswith(
        "FAILED: CANNOT_CREATE_HOSTED_ZONE: The VPC does not have DNS support enabled"
    )


@pytest.mark.parametrize(
    ("aws_status", "state_status"), [("PENDING", "PENDING"), ("SUBMITTED", "SUBMITTED")]
)
def test_check_operation_not_done_counts_the_attempt_and_waits_the_interval(
    clients: Clients,
    spec: EnvironmentSpec,
    schedule: PollSchedule,
    aws_status: str,
    state_status: str,
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    for _ in range(3):
        stubber.add_response(
            "get_operation",
            {"Operation": {"Id": OPERATION_ID, "Type": "CREATE_NAMESPACE", "Status": aws_status}},
            {"OperationId": OPERATION_ID},
        )
    state = submitted(spec, schedule)
    waits = []
    with stubber:
        for _ in range(3):
            state = namespace.check_operation(clients, state, schedule)
            waits.append(state.poll.waitSeconds)
    assert state.status == state_status
    assert state.poll.attempt == 3
    assert state.poll.maxAttempts == 20
    assert waits == [10, 10, 10]
    assert state.message == (
        f"Cloud Map operation {OPERATION_ID} creating namespace workshop.local is still {aws_status}"
        f" after 3 checks (about {schedule.budget_seconds()} s allowed)"
    )
    assert state.id is None


def test_check_operation_success_without_a_namespace_target_fails(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    stubber.add_response(
        "get_operation", {"Operation": {"Id": OPERATION_ID, "Status": "SUCCESS", "Targets": {}}}
    )
    with stubber, pytest.raises(NamespaceOperationFailed, match="succeeded but names no namespace"):
        namespace.check_operation(clients, submitted(spec, schedule), schedule)


def test_check_operation_of_an_adopted_namespace_makes_no_call(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)  # no answers: any call would fail
    adopted = NamespaceState(
        name="workshop.local",
        vpcId=spec.namespace.vpcId,
        id="ns-1",
        arn="arn:x",
        hostedZoneId="Z1",
        status="SUCCESS",
        adopted=True,
        poll=Poll.start(schedule),
    )
    with stubber:
        assert namespace.check_operation(clients, adopted, schedule) == adopted


@pytest.mark.parametrize(
    ("code", "error"),
    [("OperationNotFound", ResourceNotFound), ("ThrottlingException", AwsThrottled)],
)
def test_check_operation_maps_aws_errors(
    clients: Clients,
    spec: EnvironmentSpec,
    schedule: PollSchedule,
    code: str,
    error: type[Exception],
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    stubber.add_client_error("get_operation", service_error_code=code, service_message="no")
    with stubber, pytest.raises(error, match=f"GetOperation {OPERATION_ID}: {code}: no"):
        namespace.check_operation(clients, submitted(spec, schedule), schedule)
