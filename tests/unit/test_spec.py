"""The environment spec model (functions/envbuild_lambda/spec.py): validation, defaults, messages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from envbuild_lambda.errors import InvalidSpec
from envbuild_lambda.spec import (
    FARGATE_MEMORY,
    MAX_SERVICES,
    EnvironmentSpec,
    normalize,
    parse_spec,
)
from envbuild_lambda.steps.summary import check_state_size, largest_state

from .conftest import STATIC_VARS


def problems(raw: object) -> str:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(raw)
    return str(caught.value)


def minimal_service(**fields: Any) -> dict[str, Any]:
    return {"name": "web", "image": "nginx:latest", "port": 80, **fields}


def with_service(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base["services"] = [minimal_service(**fields)]
    return base


# --- the workshop spec and defaults -------------------------------------------------------------


def test_workshop_spec_validates_with_its_values(static_spec: dict[str, Any]) -> None:
    spec = parse_spec(static_spec)
    assert spec.environment == "workshop"
    assert spec.namespace.name == "workshop.local"
    assert spec.namespace.vpcId == STATIC_VARS["VPC_ID"]
    assert spec.cluster == "workshop-cluster"
    assert spec.network.subnets == [
        STATIC_VARS["PRIVATE_SUBNET_1"],
        STATIC_VARS["PRIVATE_SUBNET_2"],
    ]
    assert [(s.name, s.image, s.port, s.desiredCount) for s in spec.services] == [
        ("web", "nginx:latest", 80, 2),
        ("api", "httpd:latest", 80, 2),
        ("db", "redis:alpine", 6379, 1),
    ]
    assert spec.service("web").environment == {"API_ENDPOINT": "http://api.workshop.local"}
    assert spec.service("api").environment == {"DB_ENDPOINT": "db.workshop.local"}


def test_omitted_optional_fields_take_the_workshop_defaults(static_spec: dict[str, Any]) -> None:
    del static_spec["namespace"]["description"]
    del static_spec["network"]["assignPublicIp"]
    static_spec["services"] = [minimal_service()]
    spec = parse_spec(static_spec)
    service = spec.services[0]
    assert service.desiredCount == 1
    assert service.cpu == "256"
    assert service.memory == "512"
    assert service.dnsTtl == 60
    assert service.environment == {}
    assert spec.network.assignPublicIp == "DISABLED"
    assert spec.namespace.description == ""
    assert spec.executionRoleArn is None
    assert spec.taskRoleArn is None
    assert (spec.plan, spec.prune) == (False, False)  # a build that keeps removed services


@pytest.mark.parametrize("field", ["plan", "prune"])
def test_plan_and_prune_take_only_true_or_false(static_spec: dict[str, Any], field: str) -> None:
    assert getattr(parse_spec({**static_spec, field: True}), field) is True
    message = problems({**static_spec, field: "false"})
    assert f'{field}: Input should be a valid boolean (got "false")' in message


@pytest.mark.parametrize(
    ("partition", "account"),
    [("aws", "123456789012"), ("aws-cn", "210987654321"), ("aws-us-gov", "111122223333")],
)
def test_normalize_fills_the_workshop_roles_of_the_callers_partition_and_account(
    static_spec: dict[str, Any], partition: str, account: str
) -> None:
    spec = normalize(parse_spec(static_spec), partition=partition, account_id=account)
    assert spec.executionRoleArn == f"arn:{partition}:iam::{account}:role/ecsTaskExecutionRole"
    assert spec.taskRoleArn == f"arn:{partition}:iam::{account}:role/ecsTaskRole"
    # and the filled roles are valid spec values again (the output of ValidateSpec feeds later steps)
    assert EnvironmentSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_normalize_keeps_roles_given_in_the_spec(static_spec: dict[str, Any]) -> None:
    static_spec["executionRoleArn"] = "arn:aws:iam::111122223333:role/custom-exec"
    static_spec["taskRoleArn"] = "arn:aws:iam::111122223333:role/path/custom-task"
    spec = normalize(parse_spec(static_spec), partition="aws", account_id="123456789012")
    assert spec.executionRoleArn == "arn:aws:iam::111122223333:role/custom-exec"
    assert spec.taskRoleArn == "arn:aws:iam::111122223333:role/path/custom-task"


# --- unknown fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "path", "suggestion"),
    [
        (lambda s: s.update(enviroment="x"), "enviroment", "environment"),
        (lambda s: s["namespace"].update(vpcid="vpc-0a1b2c3d"), "namespace.vpcid", "vpcId"),
        (lambda s: s["network"].update(subnet=[]), "network.subnet", "subnets"),
        (
            lambda s: s["services"][1].update(desiredcount=3),
            "services[1].desiredcount",
            "desiredCount",
        ),
        (lambda s: s["services"][0].update(dnsTTL=30), "services[0].dnsTTL", "dnsTtl"),
    ],
)
def test_unknown_field_is_rejected_naming_its_path_and_the_field_meant(
    static_spec: dict[str, Any], mutate: Any, path: str, suggestion: str
) -> None:
    mutate(static_spec)
    message = problems(static_spec)
    assert f"{path}: unknown field (did you mean '{suggestion}'?)" in message


def test_unknown_field_without_a_close_match_lists_the_allowed_fields(
    static_spec: dict[str, Any],
) -> None:
    static_spec["network"]["zzz"] = 1
    message = problems(static_spec)
    assert (
        "network.zzz: unknown field (allowed: subnets, securityGroups, assignPublicIp)" in message
    )


def test_every_bad_field_is_reported_at_once(static_spec: dict[str, Any]) -> None:
    static_spec["desiredcount"] = 2
    static_spec["namespace"]["name"] = "Workshop.Local"
    static_spec["network"]["subnets"] = ["subnet-0a1b2c3d", "subnet-0a1b2c3d"]
    static_spec["services"][0]["port"] = 0
    static_spec["services"][1]["name"] = "API"
    static_spec["services"][2]["desiredcount"] = 1
    message = problems(static_spec)
    assert message.startswith("6 problem(s) in the spec: ")
    for fragment in (
        "desiredcount: unknown field",
        "namespace.name:",
        "network.subnets: duplicate entries: subnet-0a1b2c3d",
        "services[0].port:",
        "services[1].name: must be a lower-case DNS label",
        "services[2].desiredcount: unknown field (did you mean 'desiredCount'?)",
    ):
        assert fragment in message
    assert len(message.split(": ", 1)[1].split("; ")) == 6


def test_missing_required_fields_are_named(static_spec: dict[str, Any]) -> None:
    del static_spec["cluster"]
    del static_spec["services"][0]["image"]
    message = problems(static_spec)
    assert message.startswith("2 problem(s)")
    assert "cluster: required field is missing" in message
    assert "services[0].image: required field is missing" in message


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (None, "got null"),
        ([], "got an array ([])"),
        ("spec", 'got a string ("spec")'),
        (3, "got a number (3)"),
        (True, "got a boolean (true)"),
        ([{"environment": "x"}], 'got an array ([{"environment": "x"}])'),
    ],
)
def test_a_spec_that_is_not_a_json_object_is_rejected(raw: object, named: str) -> None:
    message = problems(raw)
    assert message == f"the spec must be a JSON object, {named}"


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Web", "web_api", "a" * 64, "-web", "web-", "", "web.api", "wéb"],
)
def test_invalid_dns_label_as_service_name_is_rejected(
    static_spec: dict[str, Any], name: str
) -> None:
    message = problems(with_service(static_spec, name=name))
    assert "services[0].name: must be a lower-case DNS label" in message


@pytest.mark.parametrize("name", ["a", "a" * 63, "web-1", "0db", "x-y-z"])
def test_valid_dns_label_as_service_name_is_accepted(
    static_spec: dict[str, Any], name: str
) -> None:
    assert parse_spec(with_service(static_spec, name=name)).services[0].name == name


@pytest.mark.parametrize("environment", ["Workshop", "work_shop", "-ws", "a" * 41, ""])
def test_invalid_environment_name_is_rejected(
    static_spec: dict[str, Any], environment: str
) -> None:
    static_spec["environment"] = environment
    assert "environment:" in problems(static_spec)


@pytest.mark.parametrize(
    "name",
    [
        "Workshop.local",
        "work_shop.local",
        "workshop..local",
        "-workshop.local",
        "a" * 64 + ".local",
        ".",
        "",
    ],
)
def test_invalid_namespace_name_is_rejected(static_spec: dict[str, Any], name: str) -> None:
    static_spec["namespace"]["name"] = name
    assert "namespace.name:" in problems(static_spec)


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("workshop.local", "workshop.local"),
        ("local", "local"),
        ("a.b-c.d1", "a.b-c.d1"),
        ("workshop.local.", "workshop.local"),
    ],
)
def test_valid_namespace_name_is_accepted_without_a_trailing_dot(
    static_spec: dict[str, Any], name: str, stored: str
) -> None:
    static_spec["namespace"]["name"] = name
    assert parse_spec(static_spec).namespace.name == stored


def test_namespace_name_with_a_trailing_newline_is_rejected(static_spec: dict[str, Any]) -> None:
    static_spec["namespace"]["name"] = "workshop.local\n"
    assert "namespace.name:" in problems(static_spec)


def test_duplicate_service_names_are_rejected_naming_the_repeated_names(
    static_spec: dict[str, Any],
) -> None:
    static_spec["services"].append(dict(static_spec["services"][0]))
    static_spec["services"].append(dict(static_spec["services"][2]))
    message = problems(static_spec)
    assert "services: service names must be unique, repeated: db, web" in message


@pytest.mark.parametrize("field", ["subnets", "securityGroups"])
def test_duplicate_network_entries_are_rejected(static_spec: dict[str, Any], field: str) -> None:
    value = static_spec["network"][field][0]
    static_spec["network"][field] = [value, value]
    assert f"network.{field}: duplicate entries: {value}" in problems(static_spec)


@pytest.mark.parametrize(
    ("path", "value", "hint"),
    [
        (("namespace", "vpcId"), "vpc-XYZ", "must be a VPC id"),
        (("network", "subnets"), ["subnet-12"], "must be a subnet id"),
        (("network", "securityGroups"), ["sg-nothex00"], "must be a security group id"),
        (("network", "assignPublicIp"), "disabled", "Input should be 'ENABLED' or 'DISABLED'"),
    ],
)
def test_invalid_network_ids_are_rejected_with_a_hint(
    static_spec: dict[str, Any], path: tuple[str, str], value: object, hint: str
) -> None:
    static_spec[path[0]][path[1]] = value
    message = problems(static_spec)
    assert f"{path[0]}.{path[1]}" in message
    assert hint in message


# --- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [0, 65536, -1, "80", True, 80.0, None])
def test_invalid_port_is_rejected(static_spec: dict[str, Any], port: object) -> None:
    assert "services[0].port:" in problems(with_service(static_spec, port=port))


@pytest.mark.parametrize("port", [1, 80, 6379, 65535])
def test_valid_port_is_accepted(static_spec: dict[str, Any], port: int) -> None:
    assert parse_spec(with_service(static_spec, port=port)).services[0].port == port


@pytest.mark.parametrize("count", [-1, 1001, "2", True])
def test_invalid_desired_count_is_rejected(static_spec: dict[str, Any], count: object) -> None:
    assert "services[0].desiredCount:" in problems(with_service(static_spec, desiredCount=count))


@pytest.mark.parametrize("ttl", [-1, "60", 2147483648])
def test_invalid_dns_ttl_is_rejected(static_spec: dict[str, Any], ttl: object) -> None:
    assert "services[0].dnsTtl:" in problems(with_service(static_spec, dnsTtl=ttl))


def test_zero_desired_count_and_zero_ttl_are_accepted(static_spec: dict[str, Any]) -> None:
    service = parse_spec(with_service(static_spec, desiredCount=0, dnsTtl=0)).services[0]
    assert (service.desiredCount, service.dnsTtl) == (0, 0)


# --- Fargate cpu / memory -----------------------------------------------------------------------

VALID_PAIRS = sorted(
    {(cpu, m) for cpu, mems in FARGATE_MEMORY.items() for m in (min(mems), max(mems))}
)
#: Just outside each cpu's range, and one step off the increment where there is one.
INVALID_PAIRS = sorted(
    {(cpu, min(mems) - 1024) for cpu, mems in FARGATE_MEMORY.items() if min(mems) > 1024}
    | {(cpu, max(mems) + 1024) for cpu, mems in FARGATE_MEMORY.items()}
    | {(8192, 16384 + 1024), (16384, 32768 + 4096), (256, 1536), (256, 256)}
)


def test_the_fargate_table_matches_the_ecs_developer_guide() -> None:
    assert {cpu: (min(m), max(m), len(m)) for cpu, m in FARGATE_MEMORY.items()} == {
        256: (512, 2048, 3),
        512: (1024, 4096, 4),
        1024: (2048, 8192, 7),
        2048: (4096, 16384, 13),
        4096: (8192, 30720, 23),
        8192: (16384, 61440, 12),
        16384: (32768, 122880, 12),
    }


@pytest.mark.parametrize(("cpu", "memory"), VALID_PAIRS)
def test_valid_fargate_pair_at_the_table_edges_is_accepted(
    static_spec: dict[str, Any], cpu: int, memory: int
) -> None:
    service = parse_spec(with_service(static_spec, cpu=str(cpu), memory=str(memory))).services[0]
    assert (service.cpu, service.memory) == (str(cpu), str(memory))


@pytest.mark.parametrize(("cpu", "memory"), INVALID_PAIRS)
def test_memory_outside_the_fargate_range_of_the_cpu_is_rejected(
    static_spec: dict[str, Any], cpu: int, memory: int
) -> None:
    message = problems(with_service(static_spec, cpu=str(cpu), memory=str(memory)))
    assert f"services[0]: memory {memory} is not valid with cpu {cpu} on Fargate" in message
    allowed = sorted(FARGATE_MEMORY[cpu])
    assert f"use {allowed[0]}..{allowed[-1]}" in message


def test_memory_4096_with_cpu_256_names_the_allowed_memory() -> None:
    raw = {
        "environment": "w",
        "namespace": {"name": "w.local", "vpcId": STATIC_VARS["VPC_ID"]},
        "cluster": "c",
        "network": {
            "subnets": [STATIC_VARS["PRIVATE_SUBNET_1"]],
            "securityGroups": [STATIC_VARS["ECS_SG"]],
        },
        "services": [minimal_service(cpu="256", memory="4096")],
    }
    assert (
        "memory 4096 is not valid with cpu 256 on Fargate; use 512..2048 (512, 1024, 2048)"
        in problems(raw)
    )


@pytest.mark.parametrize("cpu", ["300", "128", "32768"])
def test_cpu_that_is_not_a_fargate_size_is_rejected(static_spec: dict[str, Any], cpu: str) -> None:
    message = problems(with_service(static_spec, cpu=cpu))
    assert (
        f"cpu {cpu} is not a Fargate size, use one of 256, 512, 1024, 2048, 4096, 8192, 16384"
        in message
    )


@pytest.mark.parametrize(
    ("field", "value"), [("cpu", "0.25 vCPU"), ("cpu", "abc"), ("memory", "512MB"), ("memory", "")]
)
def test_cpu_or_memory_that_is_not_a_whole_number_is_rejected(
    static_spec: dict[str, Any], field: str, value: str
) -> None:
    message = problems(with_service(static_spec, **{field: value}))
    assert f"services[0].{field}: {field} must be a whole number" in message


@pytest.mark.parametrize(
    ("field", "value"), [("cpu", True), ("cpu", 256.0), ("memory", None), ("memory", [512])]
)
def test_cpu_or_memory_of_another_type_is_rejected(
    static_spec: dict[str, Any], field: str, value: object
) -> None:
    message = problems(with_service(static_spec, **{field: value}))
    assert f"services[0].{field}: {field} must be a string of a whole number" in message


def test_cpu_and_memory_given_as_integers_are_accepted_and_normalised_to_strings(
    static_spec: dict[str, Any],
) -> None:
    service = parse_spec(with_service(static_spec, cpu=256, memory=1024)).services[0]
    assert (service.cpu, service.memory) == ("256", "1024")
    assert service.model_dump(mode="json")["cpu"] == "256"


def test_cpu_with_non_ascii_digits_is_rejected_or_normalised(static_spec: dict[str, Any]) -> None:
    try:
        service = parse_spec(with_service(static_spec, cpu="\uff12\uff15\uff16")).services[0]
    except InvalidSpec:
        return
    assert service.cpu == "256"


# --- environment variables, roles, cluster ------------------------------------------------------


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "", "É"])
def test_invalid_environment_variable_name_is_rejected(
    static_spec: dict[str, Any], name: str
) -> None:
    message = problems(with_service(static_spec, environment={name: "v"}))
    assert "services[0].environment" in message
    assert "must be an environment variable name" in message


@pytest.mark.parametrize("name", ["A", "_X", "api_endpoint", "DB_ENDPOINT_2"])
def test_valid_environment_variable_name_is_accepted(
    static_spec: dict[str, Any], name: str
) -> None:
    assert parse_spec(with_service(static_spec, environment={name: "v"})).services[
        0
    ].environment == {name: "v"}


def test_environment_variable_value_must_be_a_string(static_spec: dict[str, Any]) -> None:
    assert "services[0].environment.PORT" in problems(
        with_service(static_spec, environment={"PORT": 80})
    )


@pytest.mark.parametrize(
    "arn",
    [
        "ecsTaskRole",
        "arn:aws:iam::123:role/ecsTaskRole",
        "arn:aws:iam::123456789012:user/ecsTaskRole",
        "arn:aws:s3:::bucket",
        "arn:aws:iam::123456789012:role/",
    ],
)
@pytest.mark.parametrize("field", ["executionRoleArn", "taskRoleArn"])
def test_invalid_role_arn_is_rejected(static_spec: dict[str, Any], field: str, arn: str) -> None:
    static_spec[field] = arn
    assert f"{field}: must be an IAM role ARN" in problems(static_spec)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/ecsTaskRole",
        "arn:aws-cn:iam::123456789012:role/service-role/x",
        "arn:aws-us-gov:iam::123456789012:role/a+b=c,d.e@f_g-h",
    ],
)
def test_valid_role_arn_is_accepted(static_spec: dict[str, Any], arn: str) -> None:
    static_spec["taskRoleArn"] = arn
    assert parse_spec(static_spec).taskRoleArn == arn


@pytest.mark.parametrize(
    ("cluster", "name"),
    [
        ("workshop-cluster", "workshop-cluster"),
        ("arn:aws:ecs:us-east-1:123456789012:cluster/workshop-cluster", "workshop-cluster"),
        ("arn:aws-cn:ecs:cn-north-1:123456789012:cluster/c_1", "c_1"),
    ],
)
def test_cluster_name_or_arn_is_accepted_and_cluster_name_derived(
    static_spec: dict[str, Any], cluster: str, name: str
) -> None:
    static_spec["cluster"] = cluster
    spec = parse_spec(static_spec)
    assert spec.cluster == cluster
    assert spec.cluster_name == name


@pytest.mark.parametrize(
    "cluster", ["", "my cluster", "arn:aws:ecs:us-east-1:123456789012:service/x", "a" * 256, "c/d"]
)
def test_invalid_cluster_is_rejected(static_spec: dict[str, Any], cluster: str) -> None:
    static_spec["cluster"] = cluster
    assert "cluster: must be an ECS cluster name or ARN" in problems(static_spec)


# --- derived names and tokens ---------------------------------------------------------------------


def test_names_derived_from_the_spec_follow_the_design(static_spec: dict[str, Any]) -> None:
    spec = parse_spec(static_spec)
    web = spec.service("web")
    assert web.family("workshop") == "workshop_web"
    assert web.log_group("workshop") == "/ecs/workshop_web"
    assert web.ecs_service_name == "web-service"
    assert web.dns_name("workshop.local") == "web.workshop.local"
    assert spec.resource_tags() == {"envbuild:environment": "workshop", "envbuild:managed": "true"}
    with pytest.raises(KeyError):
        spec.service("nope")


def test_request_token_is_deterministic_short_and_distinct_per_resource_and_environment(
    static_spec: dict[str, Any],
) -> None:
    spec = parse_spec(static_spec)
    again = parse_spec(static_spec)
    token = spec.request_token("registry", "ns-1", "web")
    assert token == again.request_token("registry", "ns-1", "web")
    assert len(token) <= 64
    assert re.fullmatch(r"[!-~]+", token)
    static_spec["environment"] = "other"
    other_env = parse_spec(static_spec)
    tokens = {
        token,
        spec.request_token("registry", "ns-1", "api"),
        spec.request_token("registry", "ns-2", "web"),
        spec.request_token("ecs-service", "ns-1", "web"),
        other_env.request_token("registry", "ns-1", "web"),
    }
    assert len(tokens) == 5
    long_parts = ("x" * 300, "y" * 300)
    assert len(spec.request_token(*long_parts)) <= 64


def test_fifty_generated_services_with_any_valid_names_validate(
    static_spec: dict[str, Any],
) -> None:
    names = [f"svc-{i:02d}" for i in range(48)] + ["a", "z" * 63]
    static_spec["services"] = [
        minimal_service(name=name, port=1000 + i, desiredCount=i % 4)
        for i, name in enumerate(names)
    ]
    spec = parse_spec(static_spec)
    assert [s.name for s in spec.services] == names
    assert len({s.ecs_service_name for s in spec.services}) == 50
    assert len({spec.request_token("registry", "ns", s.name) for s in spec.services}) == 50


def test_no_services_is_rejected(static_spec: dict[str, Any]) -> None:
    static_spec["services"] = []
    assert "services:" in problems(static_spec)


@pytest.mark.parametrize(
    "value", [846213957, True, "x" * 32769]
)  # not a string / too long: may still be a secret
def test_an_invalid_environment_value_is_named_but_never_echoed(
    static_spec: dict[str, Any], value: object
) -> None:
    message = problems(with_service(static_spec, environment={"DB_PASSWORD": value}))
    assert "services[0].environment.DB_PASSWORD" in message
    assert "got" not in message
    assert str(value)[:20] not in message


def test_an_invalid_environment_variable_name_is_shown(static_spec: dict[str, Any]) -> None:
    message = problems(with_service(static_spec, environment={"BAD-NAME": "s3cr3t-value"}))
    assert "BAD-NAME" in message
    assert "s3cr3t-value" not in message


# --- static instances and verification options (issue 6) -----------------------------------------


def test_static_instances_are_accepted_with_the_workshops_custom_attributes(
    static_spec: dict[str, Any],
) -> None:
    static_spec["services"][0]["instances"] = [
        {
            "id": "custom-web-instance",
            "ipv4": "10.0.3.100",
            "attributes": {"environment": "production", "version": "1.0"},
        }
    ]
    spec = parse_spec(static_spec)
    instance = spec.services[0].instances[0]
    assert instance.cloud_map_attributes() == {
        "AWS_INSTANCE_IPV4": "10.0.3.100",
        "environment": "production",
        "version": "1.0",
    }
    assert spec.services[0].expected_instances == spec.services[0].desiredCount + 1
    assert spec.verify.probe is False


def test_bad_static_instances_are_rejected_naming_each_field(static_spec: dict[str, Any]) -> None:
    static_spec["services"][0]["instances"] = [
        {"id": "bad id!", "ipv4": "10.0.3.300"},
        {"id": "x", "ipv4": "10.0.3.1", "attributes": {"AWS_INSTANCE_PORT": "80"}},
        {"id": "y", "ipv4": "10.0.3.2", "attributes": {f"k{i}": "v" for i in range(31)}},
        {"id": "z", "ipv4": "10.0.3.3", "attributes": {"version": " padded "}},
    ]
    static_spec["services"][1]["instances"] = [
        {"id": "same", "ipv4": "10.0.3.4"},
        {"id": "same", "ipv4": "10.0.3.5"},
    ]
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(static_spec)
    message = str(caught.value)
    assert "services[0].instances[0].id: must be a Cloud Map instance id" in message
    assert "services[0].instances[0].ipv4: must be an IPv4 address such as 10.0.3.100" in message
    assert (
        "services[0].instances[1].attributes: AWS_INSTANCE_PORT: attribute names starting with"
        " AWS_ are reserved" in message
    )
    assert (
        "services[0].instances[2].attributes: 31 custom attributes, Cloud Map allows at most 30"
        in message
    )
    assert "services[0].instances[3].attributes.version: must be printable ASCII" in message
    assert "services[1].instances: instance ids must be unique, repeated: same" in message


def test_verify_options_reject_unknown_fields(static_spec: dict[str, Any]) -> None:
    static_spec["verify"] = {"probes": True}
    with pytest.raises(
        InvalidSpec, match=r"verify.probes: unknown field \(did you mean 'probe'\?\)"
    ):
        parse_spec(static_spec)


# --- the build's largest state against Step Functions' 256 KiB per state ------------------------


def services_spec(base: dict[str, Any], n: int, **fields: Any) -> EnvironmentSpec:
    base["services"] = [minimal_service(name=f"svc{i:03d}", **fields) for i in range(n)]
    return parse_spec(base)


def test_the_most_services_a_spec_takes_fit_in_a_state(static_spec: dict[str, Any]) -> None:
    spec = services_spec(
        static_spec, MAX_SERVICES, desiredCount=2, environment={"PEER": "svc000.workshop.local"}
    )
    check_state_size(spec)  # 500 services of 2 tasks each: no error


def test_a_spec_whose_largest_state_could_exceed_step_functions_limit_is_rejected(
    static_spec: dict[str, Any],
) -> None:
    # a small input (about 40 KiB) whose summary would list 20,000 task IPs
    spec = services_spec(static_spec, MAX_SERVICES, desiredCount=40)
    with pytest.raises(InvalidSpec) as caught:
        check_state_size(spec)
    message = str(caught.value)
    assert message.startswith("services: 500 service(s) make the build's largest state")
    assert re.search(r"up to \d+ KiB, over the 224 KiB envbuild allows", message)
    assert "services[" in message
    assert "40 task(s)" in message
    assert "Split the services into several environments" in message


def test_the_heaviest_services_are_named_with_what_makes_them_heavy(
    static_spec: dict[str, Any],
) -> None:
    raw = static_spec
    raw["services"] = [minimal_service(name=f"svc{i:03d}") for i in range(30)]
    raw["services"][7]["environment"] = {f"VAR_{k}": "x" * 30000 for k in range(8)}
    with pytest.raises(InvalidSpec) as caught:
        check_state_size(parse_spec(raw))
    heaviest = str(caught.value).split("heaviest: ")[1]
    assert heaviest.startswith("services[7] (svc007: 234.")
    assert "environment 234." in heaviest


def test_the_estimate_counts_static_instances_and_the_probe_answers(
    static_spec: dict[str, Any],
) -> None:
    static_spec["verify"] = {"probe": True}
    spec = services_spec(
        static_spec, 2, instances=[{"id": "static-1", "ipv4": "10.0.3.100"}], desiredCount=3
    )
    state = largest_state(spec)
    web = state["summary"]["services"][0]
    assert len(web["ips"]) == 4  # 3 tasks + the static instance
    assert web["staticInstances"][0]["id"] == "static-1"
    assert state["summary"]["probe"]["answers"]["svc000.workshop.local"] == web["ips"]
    assert sorted(state["summary"]["outputs"]) == [
        "NAMESPACE_ID",
        "SVC000_SERVICE_ID",
        "SVC001_SERVICE_ID",
    ]
