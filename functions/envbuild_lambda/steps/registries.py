"""Cloud Map service registries: one per service, DNS A records (multivalue) with a custom health check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from envbuild_lambda.errors import aws_errors, error_code, map_client_error
from envbuild_lambda.parallel import pmap

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
            CreatorRequestId=spec.request_token(
                "registry", namespace_id, service.name, build or ""
            ),
            Description=f"{service.name} service registry (envbuild {spec.environment})",
            DnsConfig={
                "RoutingPolicy": "MULTIVALUE",
                "DnsRecords": [{"Type": "A", "TTL": service.dnsTtl}],
            },
            HealthCheckCustomConfig={"FailureThreshold": 1},
            Tags=[{"Key": key, "Value": value} for key, value in spec.tags(build).items()],
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
