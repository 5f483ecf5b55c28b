"""Create (or adopt) the private DNS namespace and follow its asynchronous Cloud Map operation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from envbuild_lambda.errors import (
    NamespaceOperationFailed,
    ResourceNotFound,
    aws_errors,
    error_code,
    map_client_error,
)
from envbuild_lambda.spec import is_managed
from envbuild_lambda.state import NamespaceOperationsState, NamespaceState, Poll
from envbuild_lambda.steps import desired, diff, retag

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients
    from envbuild_lambda.settings import PollSchedule
    from envbuild_lambda.spec import EnvironmentSpec
    from envbuild_lambda.steps.diff import Change


#: How many stale CreatorRequestIds in a row create_or_adopt steps past (each a failed or
#: deleted earlier attempt of this environment's namespace) before giving up.
MAX_STALE_REQUESTS = 5


def cloudmap_tags(clients: Clients, arn: str) -> dict[str, str]:
    with aws_errors(f"ListTagsForResource {arn}"):
        tags = clients.servicediscovery.list_tags_for_resource(ResourceARN=arn)["Tags"]
    return {tag["Key"]: tag["Value"] for tag in tags}


def find_namespace(clients: Clients, name: str, vpc_id: str) -> NamespaceState | None:
    """An existing private DNS namespace of this name whose hosted zone is associated with the VPC."""
    sd = clients.servicediscovery
    with aws_errors("ListNamespaces"):
        pages = sd.get_paginator("list_namespaces").paginate(
            Filters=[{"Name": "TYPE", "Values": ["DNS_PRIVATE"], "Condition": "EQ"}]
        )
        candidates = [ns for page in pages for ns in page["Namespaces"] if ns.get("Name") == name]
    for candidate in candidates:
        try:
            state = describe_namespace(clients, candidate["Id"], name, vpc_id)
        except ResourceNotFound:  # listed, but deleted meanwhile (being deleted): not adoptable
            continue
        if state.hostedZoneId and vpc_id in _zone_vpcs(clients, state.hostedZoneId):
            return state.model_copy(update={"adopted": True})
    return None


def describe_namespace(
    clients: Clients, namespace_id: str, name: str, vpc_id: str
) -> NamespaceState:
    with aws_errors(f"GetNamespace {namespace_id}"):
        namespace = clients.servicediscovery.get_namespace(Id=namespace_id)["Namespace"]
    zone = namespace.get("Properties", {}).get("DnsProperties", {}).get("HostedZoneId")
    return NamespaceState(
        name=name,
        vpcId=vpc_id,
        id=namespace["Id"],
        arn=namespace["Arn"],
        hostedZoneId=zone,
        status="SUCCESS",
        poll=Poll(attempt=0, waitSeconds=0, maxAttempts=0),
    )


def _zone_vpcs(clients: Clients, zone_id: str) -> set[str]:
    with aws_errors(f"GetHostedZone {zone_id}"):
        zone = clients.route53.get_hosted_zone(Id=zone_id)
    return {vpc["VPCId"] for vpc in zone.get("VPCs", []) if "VPCId" in vpc}


def _stale(clients: Clients, operation_id: str) -> bool:
    """Whether an operation AWS answered a CreatorRequestId with belongs to an earlier attempt
    that can no longer give the namespace: it FAILED, or it succeeded and the namespace has been
    deleted since. (Cloud Map keeps answering a reused CreatorRequestId with its first operation.)"""
    with aws_errors(f"GetOperation {operation_id}"):
        operation = clients.servicediscovery.get_operation(OperationId=operation_id)["Operation"]
    if operation["Status"] == "FAIL":
        return True
    if operation["Status"] != "SUCCESS":
        return False
    namespace_id = operation.get("Targets", {}).get("NAMESPACE")
    if not namespace_id:
        return True
    try:
        with aws_errors(f"GetNamespace {namespace_id}"):
            clients.servicediscovery.get_namespace(Id=namespace_id)
    except ResourceNotFound:
        return True
    return False


def _submit(clients: Clients, spec: EnvironmentSpec, build: str | None) -> str | NamespaceState:
    """CreatePrivateDnsNamespace with this environment's token; the operation to follow, or the
    namespace adopted when it appeared meanwhile (NamespaceAlreadyExists)."""
    ns = spec.namespace
    stale: list[str] = []
    for _ in range(MAX_STALE_REQUESTS):
        try:
            response = clients.servicediscovery.create_private_dns_namespace(
                Name=ns.name,
                Vpc=ns.vpcId,
                Description=ns.description,
                CreatorRequestId=spec.request_token("namespace", ns.name, ns.vpcId, *stale),
                Tags=[
                    {"Key": key, "Value": value} for key, value in spec.resource_tags(build).items()
                ],
            )
            operation_id = response["OperationId"]
        except ClientError as error:
            code = error_code(error)
            if code == "NamespaceAlreadyExists":  # created meanwhile: adopt it
                adopted = find_namespace(clients, ns.name, ns.vpcId)
                if adopted is not None:
                    return adopted
            if code != "DuplicateRequest":
                raise map_client_error(
                    error, f"CreatePrivateDnsNamespace {ns.name} in {ns.vpcId}"
                ) from error
            # The same namespace is being created (our token's earlier request, or another
            # caller's): follow that operation.
            duplicate = error.response.get("DuplicateOperationId")
            if not (isinstance(duplicate, str) and duplicate):
                raise map_client_error(error, f"CreatePrivateDnsNamespace {ns.name}") from error
            operation_id = duplicate
        if not _stale(clients, operation_id):
            return operation_id
        stale.append(operation_id)
    raise NamespaceOperationFailed(
        f"CreatePrivateDnsNamespace {ns.name} in {ns.vpcId}: Cloud Map answered {len(stale)}"
        f" request ids in a row with earlier operations that failed or whose namespace is gone"
        f" ({', '.join(stale)})"
    )


def create_or_adopt(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule, build: str | None = None
) -> NamespaceState:
    """Adopt the namespace if it already exists in the VPC; otherwise start creating it.

    ``adopted`` in the result means "not created by envbuild for this environment": a re-run
    finds the namespace a first build created and reports it as that build did."""
    ns = spec.namespace
    existing = find_namespace(clients, ns.name, ns.vpcId)
    if existing is None:
        submitted = _submit(clients, spec, build)
        if isinstance(submitted, str):
            return NamespaceState(
                name=ns.name,
                vpcId=ns.vpcId,
                operationId=submitted,
                status="SUBMITTED",
                poll=Poll.start(schedule),
                message=f"creating namespace {ns.name}: Cloud Map operation {submitted} SUBMITTED",
            )
        existing = submitted
    managed = existing.arn is not None and is_managed(
        cloudmap_tags(clients, existing.arn), spec.environment
    )
    return existing.model_copy(
        update={
            "adopted": not managed,
            "poll": Poll.start(schedule),
            "message": (
                f"namespace {ns.name} ({existing.id}) in {ns.vpcId} already built by envbuild"
                if managed
                else f"adopted existing namespace {ns.name} ({existing.id}) in {ns.vpcId}"
            ),
        }
    )


def check_operation(
    clients: Clients, state: NamespaceState, schedule: PollSchedule
) -> NamespaceState:
    """One check of the namespace operation: SUCCESS -> namespace details; FAIL -> error; else next poll."""
    if state.status == "SUCCESS" or state.operationId is None:
        return state
    with aws_errors(f"GetOperation {state.operationId}"):
        operation = clients.servicediscovery.get_operation(OperationId=state.operationId)[
            "Operation"
        ]
    status = operation["Status"]
    if status == "SUCCESS":
        namespace_id = operation.get("Targets", {}).get("NAMESPACE")
        if not namespace_id:
            raise NamespaceOperationFailed(
                f"Cloud Map operation {state.operationId} succeeded but names no namespace"
            )
        done = describe_namespace(clients, namespace_id, state.name, state.vpcId)
        return done.model_copy(
            update={
                "operationId": state.operationId,
                "poll": state.poll.next(schedule),
                "message": f"namespace {state.name} created ({namespace_id})",
            }
        )
    if status == "FAIL":
        raise NamespaceOperationFailed(
            f"Cloud Map operation {state.operationId} creating namespace {state.name} in {state.vpcId}"
            f" FAILED: {operation.get('ErrorCode', 'UNKNOWN')}: {operation.get('ErrorMessage', '')}".rstrip(
                ": "
            )
        )
    poll = state.poll.next(schedule)
    return state.model_copy(
        update={
            "status": "PENDING" if status == "PENDING" else "SUBMITTED",
            "poll": poll,
            "message": (
                f"Cloud Map operation {state.operationId} creating namespace {state.name} is still {status}"
                f" after {poll.attempt} checks (about {schedule.budget_seconds()} s allowed)"
            ),
        }
    )


# ---------------------------------------------------------------------------------------------
# The failure path: namespace creations still in flight (issue 15)

#: The statuses of an operation Cloud Map has not finished ("SUBMITTED: This is the initial state
#: that occurs immediately after you submit a request. PENDING: Cloud Map is performing the
#: operation." https://docs.aws.amazon.com/cloud-map/latest/api/API_Operation.html).
IN_FLIGHT_STATUSES = ("SUBMITTED", "PENDING")


def namespace_operations_in_flight(clients: Clients) -> list[str]:
    """The account's CREATE_NAMESPACE operations that Cloud Map has not finished (ListOperations
    with the TYPE and STATUS filters, https://docs.aws.amazon.com/cloud-map/latest/api/API_OperationFilter.html).

    Not only this build's: an operation names only the namespace id it will create, whose name
    and tags exist once it has (GetNamespace answers NamespaceNotFound until then)."""
    with aws_errors("ListOperations CREATE_NAMESPACE in flight"):
        pages = clients.servicediscovery.get_paginator("list_operations").paginate(
            Filters=[
                {"Name": "TYPE", "Values": ["CREATE_NAMESPACE"], "Condition": "EQ"},
                {"Name": "STATUS", "Values": list(IN_FLIGHT_STATUSES), "Condition": "IN"},
            ]
        )
        return sorted(
            {
                operation["Id"]
                for page in pages
                for operation in page["Operations"]
                if operation.get("Status") in IN_FLIGHT_STATUSES  # whatever the filters did
            }
        )


def check_operations_in_flight(
    clients: Clients, state: NamespaceOperationsState | None, schedule: PollSchedule
) -> NamespaceOperationsState:
    """One look at the namespace creations a failed build's rollback must wait for.

    The first look (``state`` None) lists every CREATE_NAMESPACE operation still running: the
    build's own may be among them even when its id never reached the execution's state (Create
    Namespace crashed after its call, or the Parallel state failed in the other branch and took
    the namespace branch's state with it). Each later look asks Cloud Map about those operations
    only (GetOperation); an operation that ends, SUCCESS or FAIL, leaves the list. The waits
    follow the namespace poll's steady interval, at most ``schedule.max_attempts`` looks; the
    rollback then finds by its tags the namespace any of them created for this build."""
    if state is None:
        pending = namespace_operations_in_flight(clients)
        poll = Poll.start(schedule, first_wait=schedule.interval_seconds)
    else:

        def running(operation_id: str) -> bool:
            try:
                with aws_errors(f"GetOperation {operation_id}"):
                    operation = clients.servicediscovery.get_operation(OperationId=operation_id)
            except ResourceNotFound:  # OperationNotFound: nothing left to wait for
                return False
            return operation["Operation"]["Status"] in IN_FLIGHT_STATUSES

        pending = [operation_id for operation_id in state.pending if running(operation_id)]
        poll = state.poll.next(schedule)
    if not pending:
        message = "no namespace creation in flight"
    else:
        message = (
            f"{len(pending)} Cloud Map CREATE_NAMESPACE operation(s) still running after"
            f" {poll.attempt} checks: {', '.join(pending[:10])}"
        )
    return NamespaceOperationsState(done=not pending, pending=pending, poll=poll, message=message)


def converge_namespace_tags(
    clients: Clients, spec: EnvironmentSpec, namespace: NamespaceState
) -> Change | None:
    """The spec's top-level tags on the namespace envbuild manages (diff.namespace_tags_change),
    applied with Cloud Map TagResource / UntagResource (never an envbuild:* key). None for a
    namespace this build created (tagged at creation) or adopted (never changed)."""
    if namespace.operationId or namespace.adopted or not namespace.arn:
        return None
    have = cloudmap_tags(clients, namespace.arn)
    change = diff.namespace_tags_change(
        spec.namespace.name, namespace.id or "", desired.tags(spec, None), have
    )
    if change.action != "update":
        return change
    retag.cloud_map(clients, namespace.arn, change, spec.namespace.name)
    return change
