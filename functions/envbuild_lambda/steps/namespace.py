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
from envbuild_lambda.state import NamespaceState, Poll

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients
    from envbuild_lambda.settings import PollSchedule
    from envbuild_lambda.spec import EnvironmentSpec


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


def create_or_adopt(
    clients: Clients, spec: EnvironmentSpec, schedule: PollSchedule, build: str | None = None
) -> NamespaceState:
    """Adopt the namespace if it already exists in the VPC; otherwise start creating it."""
    ns = spec.namespace
    existing = find_namespace(clients, ns.name, ns.vpcId)
    if existing is not None:
        return existing.model_copy(
            update={
                "poll": Poll.start(schedule),
                "message": f"adopted existing namespace {ns.name} ({existing.id}) in {ns.vpcId}",
            }
        )
    try:
        response = clients.servicediscovery.create_private_dns_namespace(
            Name=ns.name,
            Vpc=ns.vpcId,
            Description=ns.description,
            CreatorRequestId=spec.request_token("namespace", ns.name, ns.vpcId, build or ""),
            Tags=[{"Key": key, "Value": value} for key, value in spec.tags(build).items()],
        )
        operation_id = response["OperationId"]
    except ClientError as error:
        code = error_code(error)
        if code == "NamespaceAlreadyExists":  # created meanwhile: adopt it
            adopted = find_namespace(clients, ns.name, ns.vpcId)
            if adopted is not None:
                return adopted.model_copy(update={"poll": Poll.start(schedule)})
        if code == "DuplicateRequest":  # same CreatorRequestId still running: follow that operation
            duplicate = error.response.get("DuplicateOperationId")
            if isinstance(duplicate, str) and duplicate:
                operation_id = duplicate
            else:
                raise map_client_error(error, f"CreatePrivateDnsNamespace {ns.name}") from error
        else:
            raise map_client_error(
                error, f"CreatePrivateDnsNamespace {ns.name} in {ns.vpcId}"
            ) from error
    return NamespaceState(
        name=ns.name,
        vpcId=ns.vpcId,
        operationId=operation_id,
        status="SUBMITTED",
        poll=Poll.start(schedule),
        message=f"creating namespace {ns.name}: Cloud Map operation {operation_id} SUBMITTED",
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
