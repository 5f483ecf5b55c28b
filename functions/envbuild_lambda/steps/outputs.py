"""The build's outputs for whatever comes next: the workshop's step 8 names.

``outputs(summary)`` - NAMESPACE_ID and <NAME>_SERVICE_ID - is carried by the execution output
and the `Environment Ready` event, written as SSM parameters ``/envbuild/<environment>/<NAME>``
(tagged like every envbuild resource) and, under the same names with the same values, in the
CLI's env file. A parameter under that path that envbuild did not create is never overwritten.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from envbuild_lambda.errors import ParameterConflict, aws_errors, error_code, map_client_error
from envbuild_lambda.parallel import pmap
from envbuild_lambda.spec import TAG_ENVIRONMENT, TAG_MANAGED, managed_tags

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients

PARAMETER_ROOT = "/envbuild"


def env_name(name: str) -> str:
    """A service name as the workshop spells it in variable names: web-api -> WEB_API."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def parameter_path(environment: str) -> str:
    return f"{PARAMETER_ROOT}/{environment}/"


def outputs(namespace_id: str, registries: Mapping[str, str]) -> dict[str, str]:
    """The workshop's step 8 names -> ids: NAMESPACE_ID and one <NAME>_SERVICE_ID per service
    (``registries``: service name -> Cloud Map service id, in the spec's order). Kept to the
    ids: a 200-service summary stays small; the CLI's env file adds the ARNs and names that
    follow from them, under the same names."""
    values = {"NAMESPACE_ID": namespace_id}
    for name, registry_id in registries.items():
        values[f"{env_name(name)}_SERVICE_ID"] = registry_id
    return values


def existing_parameters(clients: Clients, path: str) -> dict[str, str]:
    """Full name -> value of the parameters directly under ``path``."""
    found: dict[str, str] = {}
    with aws_errors(f"GetParametersByPath {path}"):
        pages = clients.ssm.get_paginator("get_parameters_by_path").paginate(
            Path=path.rstrip("/"), Recursive=False
        )
        for page in pages:
            for parameter in page["Parameters"]:
                found[parameter["Name"]] = parameter["Value"]
    return found


def parameter_tags(clients: Clients, name: str) -> dict[str, str]:
    with aws_errors(f"ListTagsForResource (SSM) {name}"):
        tags = clients.ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)
    return {t["Key"]: t["Value"] for t in tags.get("TagList", [])}


def write_parameters(
    clients: Clients,
    environment: str,
    values: Mapping[str, str],
    max_workers: int,
    build: str | None = None,
) -> list[str]:
    """Create or update the step 8 parameters (``values``: ``outputs()``); returns their full
    names.

    New: PutParameter with the managed tags. Same value: nothing to do. Other value: overwritten
    only if tagged envbuild:managed for this environment; otherwise ParameterConflict.
    """
    path = parameter_path(environment)
    wanted = {f"{path}{key}": value for key, value in values.items()}
    current = existing_parameters(clients, path)
    tags = [{"Key": k, "Value": v} for k, v in managed_tags(environment, build).items()]

    def put(item: tuple[str, str]) -> None:
        name, value = item
        if name in current:
            if current[name] == value:
                return
            owner = parameter_tags(clients, name)
            if owner.get(TAG_MANAGED) != "true" or owner.get(TAG_ENVIRONMENT) != environment:
                raise ParameterConflict(
                    f"SSM parameter {name} exists and was not created by envbuild for"
                    f" {environment}; envbuild does not overwrite it: delete or rename it"
                )
            with aws_errors(f"PutParameter {name}"):
                clients.ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
            return
        try:
            clients.ssm.put_parameter(
                Name=name,
                Value=value,
                Type="String",
                Description=f"envbuild {environment}: {name.rsplit('/', 1)[-1]}",
                Tags=tags,
            )
        except ClientError as error:
            if error_code(error) == "ParameterAlreadyExists":  # made meanwhile: check its owner
                current[name] = ""
                put(item)
                return
            raise map_client_error(error, f"PutParameter {name}") from error

    pmap(put, sorted(wanted.items()), max_workers)
    return sorted(wanted)
