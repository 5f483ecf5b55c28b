"""Issue 17's spec fields: the state form, the state-size estimate, the resolution of the
top-level and per-service values, and overrides validated against botocore's ECS shapes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from envbuild_lambda.errors import InvalidSpec
from envbuild_lambda.spec import Service, parse_spec, state_form
from envbuild_lambda.steps.summary import check_state_size, largest_state

BASE: dict[str, Any] = {
    "environment": "shop",
    "namespace": {"name": "shop.local", "vpcId": "vpc-0123456789abcdef0"},
    "cluster": "shop-cluster",
    "network": {"subnets": ["subnet-01234567"], "securityGroups": ["sg-01234567"]},
    "services": [{"name": "web", "image": "nginx", "port": 80}],
}

#: A service using every field of issue 17 with ordinary values.
EVERY_FIELD: dict[str, Any] = {
    "name": "x",
    "image": "nginx:1.27",
    "port": 80,
    "desiredCount": 2,
    "command": ["nginx"],
    "entryPoint": ["/e.sh"],
    "secrets": {"DB": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"},
    "healthCheck": {"command": ["CMD-SHELL", "curl -f localhost"], "interval": 10},
    "sidecars": [{"name": "log", "image": "fluent-bit", "essential": False}],
    "dependsOn": [{"container": "log", "condition": "START"}],
    "cpuArchitecture": "ARM64",
    "capacityProviders": [{"capacityProvider": "FARGATE"}],
    "enableExecuteCommand": True,
    "dnsRecords": ["A", "SRV"],
    "deployment": {"minimumHealthyPercent": 50},
    "tags": {"tier": "web"},
    "logRetentionDays": 90,
    "platformVersion": "1.4.0",
    "network": {"subnets": ["subnet-01234567"], "securityGroups": ["sg-01234567"]},
    "autoscaling": {"minCount": 2, "maxCount": 6, "targetCpuPercent": 60},
    "overrides": {"container": {"stopTimeout": 30}},
}


def spec(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return raw


def test_new_service_fields_at_their_defaults_are_left_out_of_the_state_form() -> None:
    state = state_form(parse_spec(spec()))
    assert state["services"] == [{"name": "web", "image": "nginx", "port": 80}]
    # top-level fields are always there: the state machine's paths read them
    assert state["tags"] == {}
    assert state["logRetentionDays"] == 30


def test_set_fields_are_in_the_state_form_and_parse_back_to_the_same_service() -> None:
    parsed = parse_spec(spec(tags={"team": "a"}, logRetentionDays=None, services=[EVERY_FIELD]))
    state = state_form(parsed)
    assert state["tags"] == {"team": "a"}
    assert state["logRetentionDays"] is None
    assert Service.model_validate(state["services"][0]) == parsed.services[0]


def test_a_service_logretention_of_null_means_never_expire_and_absent_means_the_top_level() -> None:
    raw = spec(
        logRetentionDays=14,
        services=[
            {"name": "a", "image": "i", "port": 80},
            {"name": "b", "image": "i", "port": 80, "logRetentionDays": None},
            {"name": "c", "image": "i", "port": 80, "logRetentionDays": 90},
        ],
    )
    parsed = parse_spec(raw)
    again = [Service.model_validate(s) for s in state_form(parsed)["services"]]
    assert [s.effective_log_retention(14) for s in again] == [14, None, 90]
    assert parse_spec(spec()).logRetentionDays == 30  # the default


def test_resource_tags_merge_the_service_over_the_top_level_and_keep_envbuilds_own() -> None:
    parsed = parse_spec(
        spec(
            tags={"team": "a", "tier": "x"},
            services=[{"name": "web", "image": "i", "port": 80, "tags": {"tier": "web"}}],
        )
    )
    assert parsed.resource_tags("b-1", parsed.services[0]) == {
        "team": "a",
        "tier": "web",
        "envbuild:environment": "shop",
        "envbuild:managed": "true",
        "envbuild:build": "b-1",
    }


def test_too_many_tags_together_are_reported_at_the_service() -> None:
    top = {f"t{k}": "v" for k in range(40)}
    own = {f"s{k}": "v" for k in range(10)}
    with pytest.raises(InvalidSpec, match=r"services\[0\]\.tags: .*50 tags"):
        parse_spec(spec(tags=top, services=[{"name": "w", "image": "i", "port": 1, "tags": own}]))


def test_the_state_size_estimate_includes_the_new_fields() -> None:
    plain = parse_spec(spec())
    rich = parse_spec(spec(services=[dict(EVERY_FIELD, name="web")]))
    grown = len(json.dumps(largest_state(rich))) - len(json.dumps(largest_state(plain)))
    assert grown > len(json.dumps(EVERY_FIELD["healthCheck"])) + len(
        json.dumps(EVERY_FIELD["sidecars"])
    )


def test_200_services_using_every_field_fit_and_what_each_service_adds_is_still_counted() -> None:
    """200 services using every field with the same values (EVERY_FIELD): the state form gives
    the repeated values once (serviceDefaults), so they fit (before: 226 KiB of the 224 allowed,
    190 fitted). What each service has of its own is counted per service: with 1.5 KiB of
    environment each, 200 are refused before anything is created."""
    services = [dict(copy.deepcopy(EVERY_FIELD), name=f"svc-{i:03d}") for i in range(200)]
    top = {"tags": {"team": "payments"}, "logRetentionDays": 14}
    check_state_size(parse_spec(spec(**top, services=services)))
    for i, service in enumerate(services):
        service["environment"] = {f"V{k}": f"{i:03d}" + "x" * 150 for k in range(10)}
    with pytest.raises(InvalidSpec, match="over the 224 KiB envbuild allows"):
        check_state_size(parse_spec(spec(**top, services=services)))


REPO = Path(__file__).resolve().parents[2]
STATIC = {
    "VPC_ID": "vpc-0123456789abcdef0",
    "CLUSTER_NAME": "shop-cluster",
    "PRIVATE_SUBNET_1": "subnet-0123456789abcdef0",
    "PRIVATE_SUBNET_2": "subnet-0123456789abcdef1",
    "ECS_SG": "sg-0123456789abcdef0",
    "EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    "TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/ecsTaskRole",
    "AWS_REGION": "us-east-1",
    "ACCOUNT_ID": "123456789012",
    "DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/db-AbCdEf",
}


def production_like_200() -> dict[str, Any]:
    """events/production-like.json grown to 200 services, each using every field its services
    use (web's, with api's own network and secret ARN form, a retention of its own) and with
    values of its own: image, port, environment, secret, tags."""
    text = (REPO / "events" / "production-like.json").read_text()
    for key, value in STATIC.items():
        text = text.replace("${" + key + "}", value)
    raw: dict[str, Any] = json.loads(text)
    web, api, _db = raw["services"]
    services = []
    for i in range(200):
        service = copy.deepcopy(web)
        service |= {
            "name": f"svc-{i:03d}",
            "image": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/svc-{i:03d}:1.27.{i}",
            "port": 8000 + i,
            "environment": {"PEER": f"http://svc-{(i + 1) % 200:03d}.shop.local", "ID": str(i)},
            "secrets": {"DB_PASSWORD": f"{STATIC['DB_SECRET_ARN'][:-7]}-{i:03d}-AbCdEf:password::"},
            "tags": {"tier": f"tier-{i % 7}"},
            "network": copy.deepcopy(api["network"]),
            "logRetentionDays": 90,
        }
        services.append(service)
    raw["services"] = services
    return raw


def test_200_production_like_services_using_every_field_fit_a_state_with_margin() -> None:
    """The largest state of a 200-service production-like build, at its widest (the summary's
    widest ids, IPs and the change rows' full budget), stays under three quarters of the 224 KiB
    budget: about 122 KiB, where the spec's state form alone was 333 KiB before the services'
    repeated values were shared."""
    from envbuild_lambda.spec import _service_state
    from envbuild_lambda.steps.summary import FAILURE_PATH_RESERVE_BYTES, STATE_LIMIT_BYTES

    parsed = parse_spec(production_like_200())
    check_state_size(parsed)
    budget = STATE_LIMIT_BYTES - FAILURE_PATH_RESERVE_BYTES
    largest = len(json.dumps(largest_state(parsed)).encode())
    assert largest < 0.75 * budget, largest / 1024
    unshared = len(json.dumps([_service_state(s) for s in parsed.services]))
    assert unshared > budget  # without the sharing the services alone would not fit


def test_the_shared_state_form_parses_back_to_the_same_spec_and_each_entry_stands_alone() -> None:
    """Every handler parses the state form (its serviceDefaults back in each service) to the
    spec it came from; each service's entry alone is a valid Service with its own name (the
    rollback's teardown input reads the names from it)."""
    from envbuild_lambda.handlers.inputs import RegisterTaskDefinitionsInput, SpecInput
    from envbuild_lambda.spec import EnvironmentSpec, expand_state

    parsed = parse_spec(production_like_200())
    state = state_form(parsed)
    assert state["serviceDefaults"]["sidecars"][0]["name"] == "log-router"
    assert "sidecars" not in state["services"][0]
    assert EnvironmentSpec.model_validate(expand_state(state)) == parsed
    assert SpecInput.model_validate({"spec": state}).spec == parsed
    assert [Service.model_validate(s).name for s in state["services"]] == [
        s.name for s in parsed.services
    ]
    # the pipelined build's task-definition steps take the whole spec in its state form
    branch = RegisterTaskDefinitionsInput.model_validate({"spec": state})
    assert branch.spec.services[50:100] == parsed.services[50:100]


def test_a_service_that_differs_from_the_shared_values_keeps_its_own() -> None:
    """Three services share a sidecar and ARM64; a fourth runs X86_64 (the default) without a
    sidecar: its entry states both (the default architecture, no sidecars) and parses back."""
    shared = {"sidecars": [{"name": "log", "image": "fluent-bit"}], "cpuArchitecture": "ARM64"}
    services = [{"name": n, "image": "i", "port": 80, **shared} for n in "abc"]
    services.append({"name": "d", "image": "i", "port": 82})
    parsed = parse_spec(spec(services=services))
    state = state_form(parsed)
    assert set(state["serviceDefaults"]) >= {"sidecars", "cpuArchitecture"}
    assert state["services"][0] == {"name": "a", "image": "i", "port": 80}
    fourth = state["services"][3]
    assert (fourth["sidecars"], fourth["cpuArchitecture"]) == ([], "X86_64")
    from envbuild_lambda.spec import EnvironmentSpec, expand_state

    assert EnvironmentSpec.model_validate(expand_state(state)) == parsed


@pytest.mark.parametrize(
    ("overrides", "where", "says"),
    [
        ({"container": {"image": "x"}}, "overrides.container.image", "use image"),
        ({"service": {"networkConfiguration": {}}}, "overrides.service.networkConfiguration", "use network"),
        ({"taskDefinition": {"runtimePlatform": {}}}, "overrides.taskDefinition.runtimePlatform", "use cpuArchitecture"),
        ({"container": {"stopTimeot": 1}}, "overrides.container.stopTimeot", "not a field of a ContainerDefinition"),
        ({"container": {"ulimits": [{"name": "nofile", "softLimit": "1", "hardLimit": 2}]}}, "overrides.container.ulimits[0].softLimit", "type int"),
        ({"service": {"schedulingStrategy": 1}}, "overrides.service.schedulingStrategy", "type str"),
    ],
)  # fmt: skip
def test_overrides_are_checked_against_botocore_naming_the_field_path(
    overrides: dict[str, Any], where: str, says: str
) -> None:
    raw = spec(services=[{"name": "web", "image": "i", "port": 80, "overrides": overrides}])
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(raw)
    assert f"services[0].{where}: " in str(caught.value)
    assert says in str(caught.value)


def test_valid_overrides_pass() -> None:
    overrides = {
        "taskDefinition": {"ephemeralStorage": {"sizeInGiB": 30}, "pidMode": "task"},
        "container": {"stopTimeout": 30, "ulimits": [{"name": "nofile", "softLimit": 1, "hardLimit": 2}]},
        "service": {"healthCheckGracePeriodSeconds": 30, "availabilityZoneRebalancing": "ENABLED"},
    }  # fmt: skip
    parse_spec(spec(services=[{"name": "web", "image": "i", "port": 80, "overrides": overrides}]))


# --- serviceDefaults: what every service gets unless it sets the field itself ------------------


def with_defaults(production: dict[str, Any]) -> dict[str, Any]:
    """The same spec written with serviceDefaults: each field every service gives the same value
    stated once."""
    services = production["services"]
    shared = {
        key: value
        for key, value in services[0].items()
        if key != "name" and all(s.get(key) == value for s in services)
    }
    return {
        **production,
        "serviceDefaults": shared,
        "services": [{k: v for k, v in s.items() if k not in shared} for s in services],
    }


def test_service_defaults_fill_each_service_and_a_services_own_value_replaces_the_whole() -> None:
    defaults = {
        "cpu": "512",
        "memory": "1024",
        "environment": {"LOG": "info"},
        "healthCheck": {"command": ["CMD-SHELL", "true"]},
    }
    services = [
        {"name": "a", "image": "i", "port": 80},
        {"name": "b", "image": "i", "port": 81, "environment": {"MODE": "b"}, "cpu": "1024",
         "memory": "2048"},
    ]  # fmt: skip
    parsed = parse_spec(spec(serviceDefaults=defaults, services=services))
    a, b = parsed.services
    assert (a.cpu, a.memory, a.environment) == ("512", "1024", {"LOG": "info"})
    assert (b.cpu, b.memory, b.environment) == ("1024", "2048", {"MODE": "b"})  # not merged
    assert a.healthCheck == b.healthCheck
    assert a.healthCheck is not None
    # the same spec written out in full parses to the same environment
    full = [{**defaults, **s} for s in services]
    assert parse_spec(spec(services=full)) == parsed


def test_a_200_service_production_like_spec_fits_the_execution_input_with_service_defaults() -> (
    None
):
    """Written out in full, 200 production-like services are over Step Functions' 256 KiB
    execution input (StartExecution refuses it); with what they share in serviceDefaults the
    same environment is well under it, and parses to the same spec."""
    production = production_like_200()
    compact = with_defaults(production)
    assert {"sidecars", "healthCheck", "overrides", "autoscaling"} <= set(
        compact["serviceDefaults"]
    )

    def size(document: dict[str, Any]) -> int:
        return len(json.dumps(document, separators=(",", ":")).encode())

    assert size(production) > 262_144
    assert size(compact) < 0.75 * 262_144, size(compact)
    assert parse_spec(compact) == parse_spec(production)


@pytest.mark.parametrize(
    ("defaults", "says"),
    [
        ([1], "serviceDefaults: must be an object of service fields"),
        ({"name": "x"}, "serviceDefaults.name: each service names itself (services[].name)"),
        ({"desiredCount": "many"}, "serviceDefaults.desiredCount: Input should be a valid integer"),
        ({"helthCheck": {}}, "serviceDefaults.helthCheck: unknown field (did you mean 'healthCheck'?)"),
        ({"cpuArchitecture": "ARM"}, "serviceDefaults.cpuArchitecture:"),
    ],
)  # fmt: skip
def test_bad_service_defaults_are_named_once_at_service_defaults(
    defaults: object, says: str
) -> None:
    services = [{"name": n, "image": "i", "port": 80} for n in "abc"]
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(spec(serviceDefaults=defaults, services=services))
    message = str(caught.value)
    assert says in message
    assert message.startswith("1 problem(s) in the spec:"), message  # not once per service
    assert "services[0]" not in message


def test_a_cross_field_problem_from_service_defaults_is_named_at_each_service_it_reaches() -> None:
    """cpu 4096 in serviceDefaults is fine for services that set memory 8192, not for one left
    at 512 MiB: that one is named, with the pair's rule."""
    services = [
        {"name": "a", "image": "i", "port": 80, "memory": "8192"},
        {"name": "b", "image": "i", "port": 81},
    ]
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(spec(serviceDefaults={"cpu": "4096"}, services=services))
    message = str(caught.value)
    assert message.startswith("1 problem(s) in the spec: services[1]: memory 512 is not valid"), (
        message
    )
