"""Cloud Map service registries, one per spec service (functions/envbuild_lambda/steps/registries.py).

moto's ListServices ignores Filters (it lists the services of every namespace), so the tests that
depend on the namespace filter give the client a ListServices that honours it, as AWS does."""

from __future__ import annotations

from typing import Any

import pytest

from envbuild_lambda.aws import Caller, Clients
from envbuild_lambda.errors import AwsThrottled, ResourceNotFound
from envbuild_lambda.spec import EnvironmentSpec
from envbuild_lambda.steps import registries

from .conftest import Override, client_error


def make_namespace(
    clients: Clients, name: str = "workshop.local", vpc: str = "vpc-0a1b2c3d4e5f60718"
) -> str:
    sd = clients.servicediscovery
    operation_id = sd.create_private_dns_namespace(Name=name, Vpc=vpc)["OperationId"]
    return sd.get_operation(OperationId=operation_id)["Operation"]["Targets"]["NAMESPACE"]


class FilteredPaginator:
    """ListServices as AWS answers it: only the services of the NAMESPACE_ID in the filter."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def paginate(self, Filters: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        wanted = {v for f in Filters or [] if f["Name"] == "NAMESPACE_ID" for v in f["Values"]}
        services = [
            summary
            for page in self._client.get_paginator("list_services").paginate()
            for summary in page["Services"]
            if not Filters
            or self._client.get_service(Id=summary["Id"])["Service"]["NamespaceId"] in wanted
        ]
        return [{"Services": services}]


def honour_filters(clients: Clients) -> None:
    real = clients.servicediscovery

    def get_paginator(name: str) -> Any:
        return FilteredPaginator(real) if name == "list_services" else real.get_paginator(name)

    clients.servicediscovery = Override(real, get_paginator=get_paginator)  # type: ignore[misc]


def services_named(clients: Clients, name: str) -> list[dict[str, Any]]:
    sd = clients.servicediscovery
    return [
        sd.get_service(Id=s["Id"])["Service"]
        for page in sd.get_paginator("list_services").paginate()
        for s in page["Services"]
        if s["Name"] == name
    ]


def test_creates_one_registry_per_service_with_multivalue_a_records_and_the_spec_ttl(
    clients: Clients, spec: EnvironmentSpec
) -> None:
    namespace_id = make_namespace(clients)
    spec = spec.model_copy(
        update={
            "services": [
                s.model_copy(update={"dnsTtl": ttl})
                for s, ttl in zip(spec.services, (30, 60, 300), strict=True)
            ]
        }
    )
    result = registries.create_or_adopt_registries(clients, spec, namespace_id, max_workers=4)
    assert list(result) == ["web", "api", "db"]
    sd = clients.servicediscovery
    for name, ttl in (("web", 30), ("api", 60), ("db", 300)):
        service = sd.get_service(Id=result[name])["Service"]
        assert service["Name"] == name
        assert service["NamespaceId"] == namespace_id
        assert service["DnsConfig"]["RoutingPolicy"] == "MULTIVALUE"
        assert service["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": ttl}]
        assert service["CreatorRequestId"] == spec.request_token("registry", namespace_id, name)
        tags = sd.list_tags_for_resource(ResourceARN=service["Arn"])["Tags"]
        assert {t["Key"]: t["Value"] for t in tags} == {
            "envbuild:environment": "workshop",
            "envbuild:managed": "true",
        }
    assert len(set(result.values())) == 3


def test_adopts_registries_that_already_exist_in_the_namespace(
    clients: Clients, spec: EnvironmentSpec
) -> None:
    namespace_id = make_namespace(clients)
    other_namespace = make_namespace(clients, "other.local", "vpc-0ffffffffffffffff")
    sd = clients.servicediscovery
    existing_web = sd.create_service(Name="web", NamespaceId=namespace_id)["Service"]["Id"]
    other_api = sd.create_service(Name="api", NamespaceId=other_namespace)["Service"]["Id"]
    honour_filters(clients)
    result = registries.create_or_adopt_registries(clients, spec, namespace_id, max_workers=2)
    assert result["web"] == existing_web
    assert result["api"] != other_api
    assert sd.get_service(Id=result["api"])["Service"]["NamespaceId"] == namespace_id
    assert len(services_named(clients, "web")) == 1
    assert len(services_named(clients, "api")) == 2


def test_a_second_run_adopts_every_registry_and_creates_none(
    clients: Clients, spec: EnvironmentSpec
) -> None:
    namespace_id = make_namespace(clients)
    honour_filters(clients)
    first = registries.create_or_adopt_registries(clients, spec, namespace_id, max_workers=4)
    second = registries.create_or_adopt_registries(clients, spec, namespace_id, max_workers=4)
    assert second == first
    assert all(len(services_named(clients, name)) == 1 for name in ("web", "api", "db"))


def test_service_already_exists_adopts_the_id_in_the_answer(
    clients: Clients, spec: EnvironmentSpec
) -> None:
    namespace_id = make_namespace(clients)

    def already_exists(**kwargs: Any) -> None:
        raise client_error(
            "ServiceAlreadyExists",
            "exists",
            "CreateService",
            ServiceId=f"srv-existing-{kwargs['Name']}",
        )

    clients.servicediscovery = Override(clients.servicediscovery, create_service=already_exists)  # type: ignore[misc]
    result = registries.create_or_adopt_registries(clients, spec, namespace_id, max_workers=4)
    assert result == {"web": "srv-existing-web", "api": "srv-existing-api", "db": "srv-existing-db"}


def test_service_already_exists_without_an_id_is_found_by_listing(
    clients: Clients, spec: EnvironmentSpec
) -> None:
    namespace_id = make_namespace(clients)
    real = clients.servicediscovery
    made: dict[str, str] = {}

    def raced(**kwargs: Any) -> None:
        made[kwargs["Name"]] = real.create_service(
            Name=kwargs["Name"], NamespaceId=kwargs["NamespaceId"]
        )["Service"]["Id"]
        raise client_error("ServiceAlreadyExists", "exists", "CreateService")

    clients.servicediscovery = Override(real, create_service=raced)  # type: ignore[misc]
    result = registries.create_or_adopt_registries(clients, spec, namespace_id, max_workers=1)
    assert result == made


@pytest.mark.parametrize(
    ("code", "error"),
    [("NamespaceNotFound", ResourceNotFound), ("ThrottlingException", AwsThrottled)],
)
def test_create_errors_are_mapped_naming_the_service(
    clients: Clients, spec: EnvironmentSpec, code: str, error: type[Exception]
) -> None:
    namespace_id = make_namespace(clients)

    def fail(**kwargs: Any) -> None:
        raise client_error(code, "nope", "CreateService")

    clients.servicediscovery = Override(clients.servicediscovery, create_service=fail)  # type: ignore[misc]
    with pytest.raises(
        error, match=r"CreateService \(Cloud Map\) (web|api|db): " + code + ": nope"
    ):
        registries.create_or_adopt_registries(clients, spec, namespace_id, max_workers=1)


def test_fifty_services_get_fifty_registries(clients: Clients, spec: EnvironmentSpec) -> None:
    namespace_id = make_namespace(clients)
    template = spec.services[0]
    many = spec.model_copy(
        update={"services": [template.model_copy(update={"name": f"s{i}"}) for i in range(50)]}
    )
    result = registries.create_or_adopt_registries(clients, many, namespace_id, max_workers=8)
    assert list(result) == [f"s{i}" for i in range(50)]
    names = {clients.servicediscovery.get_service(Id=i)["Service"]["Name"] for i in result.values()}
    assert names == set(result)


def test_ttl_changes_are_updates_only_for_registries_envbuild_manages(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    honour_filters(clients)
    namespace_id = make_namespace(clients)
    ids = registries.create_or_adopt_registries(clients, spec, namespace_id, 4)
    sd = clients.servicediscovery
    theirs = sd.get_service(Id=ids["db"])["Service"]["Arn"]  # made by someone else: no tags
    sd.untag_resource(ResourceARN=theirs, TagKeys=["envbuild:environment", "envbuild:managed"])
    changed = spec.model_copy(
        update={"services": [s.model_copy(update={"dnsTtl": 15}) for s in spec.services]}
    )

    rows, before = registries.registry_changes(clients, changed, ids, 4)

    assert [(r.name, r.action, r.fields) for r in rows] == [
        ("web", "update", {"dnsTtl": [60, 15]}),
        ("api", "update", {"dnsTtl": [60, 15]}),
        ("db", "adopt", {}),  # not envbuild's: left as it is
    ]
    assert "dnsTtl 60, spec 15" in rows[2].note
    # what a rollback puts back
    assert before == {n: [{"Type": "A", "TTL": 60}] for n in ("web", "api")}
    operations = registries.update_registries(clients, caller, changed, ids, rows, 4)
    assert sorted(operations) == ["UpdateService api", "UpdateService web"]
    ttls = {
        name: sd.get_service(Id=ids[name])["Service"]["DnsConfig"]["DnsRecords"][0]["TTL"]
        for name in ("web", "api", "db")
    }
    assert ttls == {"web": 15, "api": 15, "db": 60}
    again, before = registries.registry_changes(clients, changed, ids, 4)
    assert [r.action for r in again] == ["unchanged", "unchanged", "adopt"]
    assert before == {}


def test_a_registry_created_again_by_a_later_build_gets_a_new_creator_request_id(
    clients: Clients, spec: EnvironmentSpec
) -> None:
    """Issue 15 item 8: the token is the same on a retry of one build's creation and differs in
    the next build that creates the registry again (after it was deleted)."""
    namespace_id = make_namespace(clients)
    sd = clients.servicediscovery
    first_build = "arn:aws:states:us-east-1:123456789012:execution:build:first"
    later_build = "arn:aws:states:us-east-1:123456789012:execution:build:later"
    web = spec.services[0]

    created = registries.create_registry(clients, spec, web, namespace_id, first_build)
    token = sd.get_service(Id=created)["Service"]["CreatorRequestId"]
    # a retry of the same build's creation: the same token
    assert registries.creator_request_id(spec, web, namespace_id, first_build) == token
    sd.delete_service(Id=created)

    again = registries.create_registry(clients, spec, web, namespace_id, later_build)
    assert again != created
    assert sd.get_service(Id=again)["Service"]["CreatorRequestId"] != token
