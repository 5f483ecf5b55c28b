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
from envbuild_lambda.state import NamespaceOperationsState, NamespaceState, Poll
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


def test_creation_uses_a_creator_request_id_derived_from_environment_and_namespace(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    build = "arn:aws:states:us-east-1:123456789012:execution:sm:b1"
    state = namespace.create_or_adopt(clients, spec, schedule, build)
    sd = clients.servicediscovery
    namespace_id = sd.get_operation(OperationId=state.operationId)["Operation"]["Targets"][
        "NAMESPACE"
    ]
    token = sd.get_namespace(Id=namespace_id)["Namespace"]["CreatorRequestId"]
    # the same in every build and retry: a duplicate build event repeats the first's request
    assert token == spec.request_token("namespace", "workshop.local", spec.namespace.vpcId)
    other = spec.model_copy(update={"environment": "other"})
    assert token != other.request_token("namespace", "workshop.local", spec.namespace.vpcId)


def _answering_token_with(
    clients: Clients, spec: EnvironmentSpec, first: dict[str, Any]
) -> list[str]:
    """Cloud Map as AWS behaves: the environment's base token is answered with an earlier
    operation (``first``, as GetOperation shows it); any other token starts a new one."""
    base = spec.request_token("namespace", spec.namespace.name, spec.namespace.vpcId)
    tokens: list[str] = []
    real_get = clients.servicediscovery.get_operation

    def create(**kwargs: Any) -> dict[str, Any]:
        tokens.append(kwargs["CreatorRequestId"])
        if kwargs["CreatorRequestId"] == base:
            return {"OperationId": "old-operation"}
        return {"OperationId": OPERATION_ID}

    def get_operation(**kwargs: Any) -> dict[str, Any]:
        if kwargs["OperationId"] == "old-operation":
            return {"Operation": {"Id": "old-operation", **first}}
        if kwargs["OperationId"] == OPERATION_ID:
            return {"Operation": {"Id": OPERATION_ID, "Status": "SUBMITTED"}}
        return dict(real_get(**kwargs))

    clients.servicediscovery = Override(  # type: ignore[misc]
        clients.servicediscovery, create_private_dns_namespace=create, get_operation=get_operation
    )
    return tokens


def test_a_token_answered_with_a_failed_operation_starts_a_new_request(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    """AWS answers a reused CreatorRequestId with its first operation, also when that FAILED: the
    rebuild after a failed namespace creation asks again with the failed operation's id added."""
    tokens = _answering_token_with(
        clients, spec, {"Status": "FAIL", "ErrorCode": "CANNOT_CREATE_HOSTED_ZONE"}
    )
    state = namespace.create_or_adopt(clients, spec, schedule)
    assert (state.status, state.operationId) == ("SUBMITTED", OPERATION_ID)
    ns = spec.namespace
    assert tokens == [
        spec.request_token("namespace", ns.name, ns.vpcId),
        spec.request_token("namespace", ns.name, ns.vpcId, "old-operation"),
    ]


def test_a_token_answered_with_a_deleted_namespace_starts_a_new_request(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    """Built, torn down, built again: the first CREATE_NAMESPACE succeeded, its namespace is gone."""
    tokens = _answering_token_with(
        clients, spec, {"Status": "SUCCESS", "Targets": {"NAMESPACE": "ns-deletedsince1234"}}
    )
    state = namespace.create_or_adopt(clients, spec, schedule)
    assert (state.status, state.operationId, len(tokens)) == ("SUBMITTED", OPERATION_ID, 2)


def test_a_token_answered_with_a_running_operation_follows_it(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule
) -> None:
    """A duplicate build event: the first build's creation is still PENDING."""
    tokens = _answering_token_with(clients, spec, {"Status": "PENDING"})
    state = namespace.create_or_adopt(clients, spec, schedule)
    assert (state.status, state.operationId, len(tokens)) == ("SUBMITTED", "old-operation", 1)


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
        get_operation=lambda **kwargs: {"Operation": {"Status": "SUBMITTED"}},
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
        clients.servicediscovery,
        create_private_dns_namespace=duplicate,
        get_operation=lambda **kwargs: {"Operation": {"Status": "PENDING"}},
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


# --- check_operations_in_flight (a failed build's wait before its rollback) --------------------

IN_FLIGHT_FILTERS = [
    {"Name": "TYPE", "Values": ["CREATE_NAMESPACE"], "Condition": "EQ"},
    {"Name": "STATUS", "Values": ["SUBMITTED", "PENDING"], "Condition": "IN"},
]
OTHER_ID = "zyxwvutsrqponmlkjihgfedcba543210-hgfedcba"


def _operation(operation_id: str, status: str) -> dict[str, Any]:
    return {"Operation": {"Id": operation_id, "Type": "CREATE_NAMESPACE", "Status": status}}


def test_in_flight_first_look_lists_running_namespace_creations_with_filters(
    clients: Clients, schedule: PollSchedule
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    stubber.add_response(
        "list_operations",
        {
            "Operations": [{"Id": OTHER_ID, "Status": "PENDING"}],
            "NextToken": "page-2",
        },
        {"Filters": IN_FLIGHT_FILTERS},
    )
    stubber.add_response(
        "list_operations",
        {"Operations": [{"Id": OPERATION_ID, "Status": "SUBMITTED"}]},
        {"Filters": IN_FLIGHT_FILTERS, "NextToken": "page-2"},
    )
    with stubber:
        state = namespace.check_operations_in_flight(clients, None, schedule)
    stubber.assert_no_pending_responses()
    assert state.done is False
    assert state.pending == sorted([OPERATION_ID, OTHER_ID])
    # the steady interval, not the long first wait of a fresh creation
    assert state.poll == Poll(attempt=0, waitSeconds=10, maxAttempts=20)
    assert "2 Cloud Map CREATE_NAMESPACE operation(s) still running" in state.message


def test_in_flight_nothing_running_is_done_at_once(
    clients: Clients, schedule: PollSchedule
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    stubber.add_response("list_operations", {"Operations": []}, {"Filters": IN_FLIGHT_FILTERS})
    with stubber:
        state = namespace.check_operations_in_flight(clients, None, schedule)
    assert (state.done, state.pending, state.message) == (
        True,
        [],
        "no namespace creation in flight",
    )


def test_in_flight_later_looks_follow_only_the_operations_found_until_they_end(
    clients: Clients, schedule: PollSchedule
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    stubber.add_response(
        "get_operation", _operation(OPERATION_ID, "PENDING"), {"OperationId": OPERATION_ID}
    )
    stubber.add_response("get_operation", _operation(OTHER_ID, "FAIL"), {"OperationId": OTHER_ID})
    stubber.add_response(
        "get_operation", _operation(OPERATION_ID, "SUCCESS"), {"OperationId": OPERATION_ID}
    )
    found = NamespaceOperationsState(
        done=False,
        pending=[OPERATION_ID, OTHER_ID],
        poll=Poll(attempt=0, waitSeconds=10, maxAttempts=20),
    )
    with stubber:
        once = namespace.check_operations_in_flight(clients, found, schedule)
        twice = namespace.check_operations_in_flight(clients, once, schedule)
    stubber.assert_no_pending_responses()
    assert (once.done, once.pending, once.poll.attempt) == (False, [OPERATION_ID], 1)
    assert (twice.done, twice.pending, twice.poll.attempt) == (True, [], 2)


def test_in_flight_an_operation_cloud_map_no_longer_knows_is_not_waited_for(
    clients: Clients, schedule: PollSchedule
) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    stubber.add_client_error(
        "get_operation",
        "OperationNotFound",
        "gone",
        400,
        expected_params={"OperationId": OPERATION_ID},
    )
    found = NamespaceOperationsState(
        done=False, pending=[OPERATION_ID], poll=Poll(attempt=0, waitSeconds=10, maxAttempts=20)
    )
    with stubber:
        state = namespace.check_operations_in_flight(clients, found, schedule)
    assert state.done is True


def test_in_flight_listing_maps_aws_errors(clients: Clients, schedule: PollSchedule) -> None:
    clients, stubber = stubbed_servicediscovery(clients)
    stubber.add_client_error("list_operations", "ThrottlingException", "slow down", 400)
    with stubber, pytest.raises(AwsThrottled):
        namespace.check_operations_in_flight(clients, None, schedule)
