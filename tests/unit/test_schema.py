"""The committed JSON Schema (schema/environment-spec.schema.json) is the pydantic model's, and strict."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from envbuild_lambda.spec import json_schema

from .conftest import workshop_spec

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema" / "environment-spec.schema.json"


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


@pytest.fixture(scope="module")
def validator(committed: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(committed)
    cls.check_schema(committed)
    return cls(committed)


def test_committed_schema_is_up_to_date_with_the_model(committed: dict[str, Any]) -> None:
    assert committed == json_schema(), (
        f"{SCHEMA_FILE.name} is stale: the spec model changed. Run `make schema` and commit the result."
    )


def test_committed_schema_is_formatted_as_make_schema_writes_it() -> None:
    expected = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.read_text() == expected, "run `make schema` and commit the result"


def test_schema_declares_draft_2020_12_and_its_id(committed: dict[str, Any]) -> None:
    assert committed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert committed["$id"].endswith("/environment-spec.schema.json")


def _objects(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{where}/{i}")


def test_every_object_definition_forbids_additional_properties(committed: dict[str, Any]) -> None:
    objects = dict(_objects(committed))
    assert set(objects) == {
        "#",
        "#/$defs/Namespace",
        "#/$defs/Network",
        "#/$defs/Service",
        "#/$defs/ServiceDefaults",
        "#/$defs/StaticInstance",
        "#/$defs/VerifyOptions",
        "#/$defs/Autoscaling",
        "#/$defs/CapacityProvider",
        "#/$defs/DependsOn",
        "#/$defs/Deployment",
        "#/$defs/HealthCheck",
        "#/$defs/Overrides",
        "#/$defs/Sidecar",
    }
    assert {
        where: obj.get("additionalProperties") for where, obj in objects.items()
    } == dict.fromkeys(objects, False)


def test_workshop_spec_is_valid_against_the_schema(
    validator: jsonschema.protocols.Validator,
) -> None:
    assert list(validator.iter_errors(workshop_spec())) == []


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ((), "$"),
        (("namespace",), "$.namespace"),
        (("network",), "$.network"),
        (("services", 0), "$.services[0]"),
        (("services", 2), "$.services[2]"),
    ],
)
def test_schema_rejects_an_unknown_field_at_each_level(
    validator: jsonschema.protocols.Validator, path: tuple[str | int, ...], where: str
) -> None:
    spec = copy.deepcopy(workshop_spec())
    node: Any = spec
    for part in path:
        node = node[part]
    node["desiredcount"] = 2
    errors = list(validator.iter_errors(spec))
    assert [(e.validator, e.json_path) for e in errors] == [("additionalProperties", where)]
    assert "'desiredcount' was unexpected" in errors[0].message


def test_schema_requires_the_documented_fields(committed: dict[str, Any]) -> None:
    assert set(committed["required"]) == {
        "environment",
        "namespace",
        "cluster",
        "network",
        "services",
    }
    assert set(committed["$defs"]["Service"]["required"]) == {"name", "image", "port"}
    assert set(committed["$defs"]["Namespace"]["required"]) == {"name", "vpcId"}
    assert set(committed["$defs"]["Network"]["required"]) == {"subnets", "securityGroups"}


def test_schema_documents_the_workshop_defaults(committed: dict[str, Any]) -> None:
    service = committed["$defs"]["Service"]["properties"]
    assert {k: service[k]["default"] for k in ("desiredCount", "cpu", "memory", "dnsTtl")} == {
        "desiredCount": 1,
        "cpu": "256",
        "memory": "512",
        "dnsTtl": 60,
    }
    assert committed["$defs"]["Network"]["properties"]["assignPublicIp"]["default"] == "DISABLED"
    assert committed["$defs"]["Namespace"]["properties"]["description"]["default"] == ""


def test_schema_documents_the_default_of_service_environment(committed: dict[str, Any]) -> None:
    assert committed["$defs"]["Service"]["properties"]["environment"].get("default") == {}
