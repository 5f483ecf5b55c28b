"""Issue 17's spec fields: the state form, the state-size estimate, the resolution of the
top-level and per-service values, and overrides validated against botocore's ECS shapes."""

from __future__ import annotations

import copy
import json
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


def test_190_services_using_every_field_fit_a_state_and_200_are_refused_naming_the_limit() -> None:
    """About 880 bytes of state form per service using every field with ordinary values (each
    its own network, sidecar, health check, secret, overrides): 190 such services fit beside
    the build's summary and change rows; 200 come to about 226 KiB of the 224 allowed and are
    refused before anything is created."""
    services = [dict(copy.deepcopy(EVERY_FIELD), name=f"svc-{i:03d}") for i in range(200)]
    top = {"tags": {"team": "payments"}, "logRetentionDays": 14}
    check_state_size(parse_spec(spec(**top, services=services[:190])))
    with pytest.raises(InvalidSpec, match="over the 224 KiB envbuild allows"):
        check_state_size(parse_spec(spec(**top, services=services)))


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
