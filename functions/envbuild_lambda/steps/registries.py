"""Cloud Map service registries: one per service, DNS A records (multivalue) with a custom health check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from envbuild_lambda.errors import aws_errors, error_code, map_client_error
from envbuild_lambda.parallel import pmap
from envbuild_lambda.spec import is_managed
from envbuild_lambda.steps import desired
from envbuild_lambda.steps.namespace import cloudmap_tags

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients
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
            Name=service.name,
            NamespaceId=namespace_id,
            CreatorRequestId=creator_request_id(spec, service, namespace_id, build),
            Description=f"{service.name} service registry (envbuild {spec.environment})",
            DnsConfig={
                "RoutingPolicy": "MULTIVALUE",
                "DnsRecords": desired.dns_records(service),
            },
            HealthCheckCustomConfig={"FailureThreshold": 1},
            Tags=[
                {"Key": key, "Value": value}
                for key, value in spec.resource_tags(build, service).items()
            ],
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
    existing = existing_registries(clients, namespace_id)
    missing = [service for service in spec.services if service.name not in existing]
    ids = pmap(
        lambda s: create_registry(clients, spec, s, namespace_id, build), missing, max_workers
    )
    created = dict(zip((service.name for service in missing), ids, strict=True))
    return {
        service.name: existing.get(service.name) or created[service.name]
        for service in spec.services
    }


def dns_ttl(registry: dict[str, Any]) -> int | None:
    """The TTL of a registry's A record (None if it has none)."""
    records = registry.get("DnsConfig", {}).get("DnsRecords", [])
    return next((int(r["TTL"]) for r in records if r.get("Type") == "A" and "TTL" in r), None)


def describe_registry(clients: Clients, registry_id: str) -> dict[str, Any]:
    with aws_errors(f"GetService (Cloud Map) {registry_id}"):
        return dict(clients.servicediscovery.get_service(Id=registry_id)["Service"])


def ttl_changes(
    clients: Clients,
    spec: EnvironmentSpec,
    registries: dict[str, str],
    max_workers: int,
) -> dict[str, tuple[int | None, int]]:
    """Service name -> (current TTL, spec TTL) for the registries envbuild manages for this
    environment whose A record TTL differs from the spec (adopted registries are left as they are)."""

    def current(service: Service) -> tuple[int | None, bool]:
        registry = describe_registry(clients, registries[service.name])
        ttl = dns_ttl(registry)
        if ttl == service.dnsTtl:
            return ttl, False
        managed = is_managed(cloudmap_tags(clients, str(registry["Arn"])), spec.environment)
        return ttl, managed

    answers = pmap(current, spec.services, max_workers)
    return {
        service.name: (ttl, service.dnsTtl)
        for service, (ttl, managed) in zip(spec.services, answers, strict=True)
        if managed
    }


def update_ttls(
    clients: Clients, registries: dict[str, str], changes: dict[str, int], max_workers: int
) -> dict[str, str]:
    """Cloud Map UpdateService of each registry's A record TTL (service name -> TTL); the
    asynchronous operations to wait for ("UpdateService <name>" -> operation id)."""

    def update(name: str) -> str:
        with aws_errors(f"UpdateService (Cloud Map) {name} TTL {changes[name]}"):
            return str(
                clients.servicediscovery.update_service(
                    Id=registries[name],
                    Service={"DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": changes[name]}]}},
                )["OperationId"]
            )

    names = sorted(changes)
    return {
        f"UpdateService {name}": operation
        for name, operation in zip(names, pmap(update, names, max_workers), strict=True)
    }
