"""ClientError -> domain error mapping (functions/envbuild_lambda/errors.py)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from envbuild_lambda.errors import (
    ACCESS_DENIED_CODES,
    NOT_FOUND_CODES,
    THROTTLING_CODES,
    AccessDenied,
    AwsRequestFailed,
    AwsThrottled,
    EnvbuildError,
    NamespaceConflict,
    ResourceNotFound,
    aws_errors,
    error_code,
    map_client_error,
)

from .conftest import client_error


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_throttling_codes_map_to_aws_throttled(code: str) -> None:
    error = map_client_error(client_error(code, "Rate exceeded"), "CreateService web")
    assert type(error) is AwsThrottled
    assert str(error) == f"CreateService web: {code}: Rate exceeded"


@pytest.mark.parametrize("code", sorted(ACCESS_DENIED_CODES))
def test_access_denied_codes_map_to_access_denied_pointing_at_the_policy(code: str) -> None:
    error = map_client_error(
        client_error(code, "User is not authorized to perform: ecs:CreateService"),
        "CreateService web",
    )
    assert type(error) is AccessDenied
    assert str(error).startswith(
        f"CreateService web: {code}: User is not authorized to perform: ecs:CreateService"
    )
    assert "policy" in str(error)
    assert "template.yaml" in str(error)


@pytest.mark.parametrize("code", sorted(NOT_FOUND_CODES))
def test_not_found_codes_map_to_resource_not_found(code: str) -> None:
    error = map_client_error(
        client_error(code, "Cluster not found."), "DescribeServices in cluster c"
    )
    assert type(error) is ResourceNotFound
    assert str(error) == f"DescribeServices in cluster c: {code}: Cluster not found."


def test_conflicting_domain_exists_maps_to_namespace_conflict() -> None:
    error = map_client_error(
        client_error("ConflictingDomainExists", "A conflicting domain exists"),
        "CreatePrivateDnsNamespace a.local",
    )
    assert type(error) is NamespaceConflict
    assert (
        str(error)
        == "CreatePrivateDnsNamespace a.local: ConflictingDomainExists: A conflicting domain exists"
    )


@pytest.mark.parametrize(
    "code", ["InvalidParameterException", "InvalidInput", "ResourceLimitExceeded", "Unknown"]
)
def test_other_codes_map_to_aws_request_failed(code: str) -> None:
    error = map_client_error(
        client_error(code, "something is wrong"), "RegisterTaskDefinition w-web"
    )
    assert type(error) is AwsRequestFailed
    assert str(error) == f"RegisterTaskDefinition w-web: {code}: something is wrong"


def test_an_answer_without_a_message_names_action_and_code() -> None:
    error = map_client_error(
        ClientError({"Error": {"Code": "InternalFailure"}}, "Op"), "GetOperation op-1"
    )
    assert str(error) == "GetOperation op-1: InternalFailure"


def test_an_answer_without_an_error_block_is_unknown() -> None:
    error = map_client_error(ClientError({}, "Op"), "GetOperation op-1")
    assert type(error) is AwsRequestFailed
    assert str(error) == "GetOperation op-1: Unknown"


def test_every_mapped_error_is_an_envbuild_error() -> None:
    for code in (
        "Throttling",
        "AccessDenied",
        "ServiceNotFound",
        "ConflictingDomainExists",
        "Other",
    ):
        assert isinstance(map_client_error(client_error(code), "x"), EnvbuildError)


def test_aws_errors_maps_and_chains_the_client_error() -> None:
    original = client_error("ThrottlingException", "Rate exceeded", "CreateService")
    with pytest.raises(AwsThrottled) as caught, aws_errors("CreateService web"):
        raise original
    assert str(caught.value) == "CreateService web: ThrottlingException: Rate exceeded"
    assert caught.value.__cause__ is original


def test_aws_errors_lets_other_exceptions_through_unchanged() -> None:
    with pytest.raises(KeyError), aws_errors("x"):
        raise KeyError("k")


def test_aws_errors_is_silent_without_an_error() -> None:
    with aws_errors("x"):
        value = 1
    assert value == 1


def test_error_code_reads_the_code_or_empty() -> None:
    assert error_code(client_error("DuplicateRequest")) == "DuplicateRequest"
    assert error_code(ClientError({}, "Op")) == ""
