"""Cloud Map service registries: one per service, DNS A records (multivalue) with a custom health check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from envbuild_lambda.errors import aws_errors, error_code, map_client_error
from envbuild_lambda.parallel import pmap
from envbuild_lambda.spec import is_managed
from envbuild_lambda.steps import desired, diff, retag
from envbuild_lambda.steps.diff import Change
from envbuild_lambda.steps.namespace import cloudmap_tags

if TYPE_CHECKING:
    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service


def existing_registries(clients: Clients, namespace_id: str) -> dict[str, str]:
    """Registry name -> id for the services already in the namespace."""
    with aws_errors(f"ListServices in {namespace_id}"):
        pages = clients.servicediscovery.get_paginator("list_services").paginate(
            Filters=[{"Name": "NAMESPACE_ID", "Values": [namespace_id], "Condition": "EQ"}]
        )
        return {summary["Name"]: summary["Id"] for page in pages for summary in page["Services"]}


def creator_request_id(
    spec: EnvironmentSpec, service: Service, namespace_id: str, build: str | None
) -> str:
    """The CreateService token: the same on every retry of this build's creation (a retried step,
    an SDK retry after a lost response), another in a later build that creates the registry again
    (after a teardown, a prune or a deletion by hand), so Cloud Map never answers a new creation
    with the request that made a registry deleted since."""
    return spec.request_token("registry", namespace_id, service.name, *([build] if build else []))


def create_registry(
    clients: Clients,
    spec: EnvironmentSpec,
    service: Service,
    namespace_id: str,
    build: str | None = None,
) -> str:
    try:
        response = clients.servicediscovery.create_service(
            **desired.registry(spec, service),
            NamespaceId=namespace_id,
            CreatorRequestId=creator_request_id(spec, service, namespace_id, build),
            Tags=desired.cloud_map_tags(desired.tags(spec, service, build)),
        )
    except ClientError as error:
        if error_code(error) == "ServiceAlreadyExists":  # created meanwhile: adopt it
            service_id = error.response.get("ServiceId")
            if isinstance(service_id, str) and service_id:
                return service_id
            found = existing_registries(clients, namespace_id).get(service.name)
            if found:
                return found
        raise map_client_error(error, f"CreateService (Cloud Map) {service.name}") from error
    return response["Service"]["Id"]


def create_or_adopt_registries(
    clients: Clients,
    spec: EnvironmentSpec,
    namespace_id: str,
    max_workers: int,
    build: str | None = None,
) -> dict[str, str]:
    """Service name -> registry id, creating the registries that do not exist yet."""
    return create_missing_registries(clients, spec, namespace_id, max_workers, build)[0]


def create_missing_registries(
    clients: Clients,
    spec: EnvironmentSpec,
    namespace_id: str,
    max_workers: int,
    build: str | None = None,
) -> tuple[dict[str, str], list[str]]:
    """(service name -> registry id, the names of the registries created now)."""
    existing = existing_registries(clients, namespace_id)
    missing = [service for service in spec.services if service.name not in existing]
    ids = pmap(
        lambda s: create_registry(clients, spec, s, namespace_id, build), missing, max_workers
    )
    created = dict(zip((service.name for service in missing), ids, strict=True))
    result = {
        service.name: existing.get(service.name) or created[service.name]
        for service in spec.services
    }
    return result, sorted(created)


def describe_registry(clients: Clients, registry_id: str) -> dict[str, Any]:
    with aws_errors(f"GetService (Cloud Map) {registry_id}"):
        return dict(clients.servicediscovery.get_service(Id=registry_id)["Service"])


def registry_changes(
    clients: Clients,
    spec: EnvironmentSpec,
    registries: dict[str, str],
    max_workers: int,
) -> tuple[list[Change], dict[str, list[dict[str, Any]]]]:
    """diff.registry_change for each of the spec's registries that exists (``registries``:
    service name -> id): update rows for those envbuild manages whose DNS records differ; and
    the DnsRecords of those, as they are (a rollback restores them)."""

    def change(service: Service) -> tuple[Change, list[dict[str, Any]]]:
        current = describe_registry(clients, registries[service.name])
        records = list(current.get("DnsConfig", {}).get("DnsRecords", []))
        have = cloudmap_tags(clients, str(current["Arn"]))
        managed = is_managed(have, spec.environment)
        row = diff.registry_change(
            service,
            desired.registry(spec, service),
            current,
            managed=managed,
            tags=(desired.tags(spec, service), have),
        )
        return row, records

    found = pmap(change, [s for s in spec.services if s.name in registries], max_workers)
    rows = [row for row, _records in found]
    before = {row.name: records for row, records in found if row.action == "update"}
    return rows, before


def update_registries(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    registries: dict[str, str],
    rows: list[Change],
    max_workers: int,
) -> dict[str, str]:
    """Each registry whose row is an update: Cloud Map UpdateService of its DnsRecords (as the
    spec renders them) when they differ, TagResource / UntagResource of the spec's tags that
    differ. Returns the asynchronous operations to wait for ("UpdateService <name>" ->
    operation id)."""
    updates = sorted((row for row in rows if row.action == "update"), key=lambda r: r.name)

    def update(row: Change) -> tuple[str, str] | None:
        name = row.name
        arn = desired.registry_arn(caller, registries[name])
        retag.cloud_map(clients, arn, row, f"(Cloud Map) {name}")
        if all(field.startswith("tags.") for field in row.fields):
            return None
        records = desired.registry(spec, spec.service(name))["DnsConfig"]["DnsRecords"]
        with aws_errors(f"UpdateService (Cloud Map) {name} DNS records {records}"):
            operation = clients.servicediscovery.update_service(
                Id=registries[name], Service={"DnsConfig": {"DnsRecords": records}}
            )["OperationId"]
        return f"UpdateService {name}", str(operation)

    return dict(r for r in pmap(update, updates, max_workers) if r is not None)
