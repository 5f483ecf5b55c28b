"""Bad-input suite (issue 3, item 5): generated malformed specs are rejected, naming every bad field,
before any AWS call that changes something.

Property 1 runs parse_spec in-process on >= 1,000 generated bad specs; property 2 starts real builds
on the emulator with a sample of them. Both are derandomized (same examples every run, no example
database), so CI is reproducible. See strategies.py for how bad specs are made.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from envbuild_lambda.errors import InvalidSpec
from envbuild_lambda.spec import parse_spec
from tests.workflow.helpers import account_snapshot, states_entered

from .conftest import BAD_SPECS, MUTATION_KINDS, CallRecorder
from .strategies import (
    BAD_COMBINATIONS,
    BAD_NEW_VALUES,
    BAD_RETENTIONS,
    BAD_TAGS,
    HEX,
    NEW_SERVICE_FIELDS,
    BadSpec,
    Mutation,
    accounts,
    bad_specs,
    dns_labels,
    namespace_names,
    role_names,
    valid_specs,
)
from .strategies import apply as apply_mutations

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schema" / "environment-spec.schema.json").read_text()
)
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)

IN_PROCESS_EXAMPLES = 1200
WORKFLOW_EXAMPLES = 30

COMMON = settings(
    deadline=None,
    derandomize=True,  # the same examples every run (CI reproducibility)
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PROBLEMS = re.compile(r"(\d+) problem\(s\) in the spec: (.*)\Z", re.DOTALL)


def _covers(reported: str, where: str, exact: bool) -> bool:
    return reported == where or (
        not exact and (reported.startswith(where + ".") or reported.startswith(where + "["))
    )


def assert_names_exactly_the_bad_fields(bad: BadSpec, message: str) -> None:
    """The message reports every mutation at its path, and as many problems as it reports.

    Problems are joined with "; ", which some problems contain too ("service names must be unique;
    repeated: web"), so the message is not split blindly: a problem starts where a mutation's path
    (or, for a non-exact one, a path below it) and ": " follow the start or a "; ". Injected values
    never contain ";". If the count of such starts is the message's count, nothing else is reported.
    """
    match = PROBLEMS.match(message)
    assert match, f"not a spec error: {message!r}"
    total, body = int(match.group(1)), match.group(2)
    starts = [0, *(m.end() for m in re.finditer("; ", body))]
    owners: dict[int, list[Mutation]] = {}
    for start in starts:
        reported = body[start:].split(": ", 1)[0]
        for mutation in bad.mutations:
            if _covers(reported, mutation.where, mutation.exact):
                owners.setdefault(start, []).append(mutation)
    found = sorted(owners)
    texts = {s: body[s : next((e - 2 for e in found if e > s), len(body))] for s in found}
    for mutation in bad.mutations:
        mine = [texts[s] for s in found if mutation in owners[s]]
        assert mine, f"{mutation!r} is not reported at {mutation.where}: {message}"
        assert any(mutation.fragment in text for text in mine), (
            f"{mutation!r}: no problem at {mutation.where} says {mutation.fragment!r}: {message}"
        )
    assert len(found) == total, (
        f"{total} problems reported, {len(found)} of them about the injected faults "
        f"{bad.mutations!r}: {message}"
    )


def count(bad: BadSpec, prop: str) -> None:
    BAD_SPECS[prop] += 1
    MUTATION_KINDS.update(m.kind for m in bad.mutations)


# --- property 1: in-process ---------------------------------------------------------------------


@settings(COMMON, max_examples=IN_PROCESS_EXAMPLES)
@given(bad=bad_specs())
def check_rejected_naming_every_bad_field(bad: BadSpec) -> None:
    count(bad, "parse_spec (in-process)")
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(bad.spec)
    assert_names_exactly_the_bad_fields(bad, str(caught.value))


def test_every_generated_bad_spec_is_rejected_naming_exactly_its_bad_fields() -> None:
    before = BAD_SPECS["parse_spec (in-process)"]
    check_rejected_naming_every_bad_field()
    assert BAD_SPECS["parse_spec (in-process)"] - before >= 1000


@settings(COMMON, max_examples=200)
@given(spec=valid_specs())
def test_valid_generated_specs_parse_and_round_trip_through_the_json_schema(
    spec: dict[str, Any],
) -> None:
    VALIDATOR.validate(spec)
    parsed = parse_spec(spec)
    dumped = json.loads(json.dumps(parsed.model_dump(mode="json")))
    VALIDATOR.validate(dumped)
    assert parse_spec(dumped) == parsed


# --- property 2: through the workflow on the emulator -------------------------------------------


@pytest.mark.e2e
def test_bad_specs_fail_the_workflow_at_validate_spec_before_any_mutating_aws_call(
    module_emulator: Any, aws_calls: CallRecorder
) -> None:
    emulator = module_emulator
    baseline = account_snapshot(emulator)

    @settings(COMMON, max_examples=WORKFLOW_EXAMPLES)
    @given(bad=bad_specs(max_mutations=3, max_services=5))
    def check(bad: BadSpec) -> None:
        count(bad, "workflow on the emulator")
        aws_calls.clear()
        with aws_calls.own_start_execution():
            arn = emulator.start_build(bad.spec, name=f"bad-spec-{uuid.uuid4().hex[:16]}")
        described = emulator.wait(arn)
        history = emulator.history(arn)
        assert aws_calls.mutating() == [], "mutating AWS calls during a build of a bad spec"

        assert described["status"] == "FAILED"
        assert described["error"] == "InvalidSpec", described.get("cause")
        assert_names_exactly_the_bad_fields(bad, json.loads(described["cause"])["errorMessage"])
        assert states_entered(history) == ["Validate Spec", "Spec Rejected", "Build Failed"]
        assert account_snapshot(emulator) == baseline

    check()


# --- validation holes the generation found once (fixed in spec.py; these keep them closed) ------


def _valid(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "environment": "ws",
        "namespace": {"name": "ws.local", "vpcId": "vpc-0123456789abcdef0"},
        "cluster": "workshop-cluster",
        "network": {
            "subnets": ["subnet-0123456789abcdef0"],
            "securityGroups": ["sg-0123456789abcdef0"],
        },
        "services": [{"name": "web", "image": "nginx:latest", "port": 80}],
    }
    for key, value in changes.items():
        spec[key] = value
    return spec


def _names(spec: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(spec)
    message = str(caught.value)
    assert f"spec: {where}: " in message or f"; {where}: " in message, message


@settings(COMMON, max_examples=25)
@given(name=namespace_names, dots=st.integers(2, 4))
def test_namespace_ending_in_an_empty_label_is_rejected(name: str, dots: int) -> None:
    _names(_valid(namespace={"name": name + "." * dots, "vpcId": "vpc-0123456789abcdef0"}), "namespace.name")  # fmt: skip


@settings(COMMON, max_examples=25)
@given(digits=st.integers(9, 16).flatmap(lambda n: st.text(HEX, min_size=n, max_size=n)))
def test_ids_of_neither_8_nor_17_hex_digits_are_rejected(digits: str) -> None:
    _names(_valid(namespace={"name": "ws.local", "vpcId": f"vpc-{digits}"}), "namespace.vpcId")


@settings(COMMON, max_examples=25)
@given(
    account=accounts,
    name=role_names.filter(lambda n: "/" not in n).map(lambda n: n.ljust(65, "r")),
)
def test_role_arns_with_a_role_name_over_64_characters_are_rejected(
    account: str, name: str
) -> None:
    _names(_valid(taskRoleArn=f"arn:aws:iam::{account}:role/{name}"), "taskRoleArn")


@settings(COMMON, max_examples=25)
@given(total=st.integers(230, 253), service=dns_labels)
def test_services_whose_dns_name_exceeds_253_characters_are_rejected(
    total: int, service: str
) -> None:
    assume(len(service) + 1 + total > 253)
    labels, left = [], total
    while left > 63:  # labels of at most 63 characters, total characters in all
        size = 62 if left == 64 else 63
        labels.append("a" * size)
        left -= size + 1
    namespace = ".".join([*labels, "b" * left])
    assert len(namespace) == total
    spec = _valid(namespace={"name": namespace, "vpcId": "vpc-0123456789abcdef0"})
    spec["services"][0]["name"] = service
    _names(spec, "services[0].name")


# --- issue 17's fields: every listed bad value, each rejected naming its field -------------------

NEW_FIELD_CASES = [
    pytest.param(("services", 0, name), value, id=f"{name}-{index}")
    for name, values in sorted(BAD_NEW_VALUES.items())
    for index, value in enumerate(values)
] + [
    pytest.param((name,), value, id=f"top-{name}-{index}")
    for name, values in (("tags", BAD_TAGS), ("logRetentionDays", BAD_RETENTIONS))
    for index, value in enumerate(values)
]


#: The same bad values given once for every service (serviceDefaults): named there, once.
DEFAULTS_CASES = [
    pytest.param(("serviceDefaults", name), value, id=f"defaults-{name}-{index}")
    for name, values in sorted(BAD_NEW_VALUES.items())
    for index, value in enumerate(values)
]


@pytest.mark.parametrize(("path", "value"), NEW_FIELD_CASES + DEFAULTS_CASES)
def test_every_bad_value_of_a_new_field_is_rejected_naming_the_field(
    path: tuple[str | int, ...], value: Any
) -> None:
    spec = _valid()
    if path[0] == "serviceDefaults":
        spec["serviceDefaults"] = {}
    bad = BadSpec(spec, [Mutation("new-field-value", path, ((path, value),), exact=False)])
    bad.spec = apply_mutations(bad.spec, bad.mutations)
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(bad.spec)
    assert_names_exactly_the_bad_fields(bad, str(caught.value))


@pytest.mark.parametrize(
    ("make", "fragment"), BAD_COMBINATIONS, ids=[f for _, f in BAD_COMBINATIONS]
)
def test_every_bad_combination_of_new_fields_is_rejected_naming_a_field_of_the_service(
    make: Any, fragment: str
) -> None:
    spec = _valid()
    changes = tuple((("services", 0, k), v) for k, v in make(spec["services"][0]).items())
    bad = BadSpec(spec, [Mutation("new-field-combination", ("services", 0), changes, exact=False, fragment=fragment)])  # fmt: skip
    bad.spec = apply_mutations(spec, bad.mutations)
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(bad.spec)
    assert_names_exactly_the_bad_fields(bad, str(caught.value))


def test_the_production_like_example_uses_every_new_field_and_is_valid() -> None:
    from tests.conftest import fill

    prerequisites = {
        "VPC_ID": "vpc-0123456789abcdef0", "CLUSTER_NAME": "shop-cluster",
        "PRIVATE_SUBNET_1": "subnet-0123456789abcdef0", "PRIVATE_SUBNET_2": "subnet-0123456789abcdef1",
        "ECS_SG": "sg-0123456789abcdef0", "EXECUTION_ROLE_ARN": "arn:aws:iam::111122223333:role/e",
        "TASK_ROLE_ARN": "arn:aws:iam::111122223333:role/t", "AWS_REGION": "us-east-1",
        "ACCOUNT_ID": "111122223333",
        "DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:shop/db-AbCdEf",
    }  # fmt: skip
    text = (Path(__file__).resolve().parents[2] / "events" / "production-like.json").read_text()
    raw = json.loads(fill(text, prerequisites))
    VALIDATOR.validate(raw)
    spec = parse_spec(raw)
    used = {key for service in raw["services"] for key in service} | set(raw)
    assert set(NEW_SERVICE_FIELDS) <= used
    assert {"tags", "logRetentionDays"} <= set(raw)
    assert spec.service("db").effective_log_retention(spec.logRetentionDays) is None
    assert spec.service("web").effective_log_retention(spec.logRetentionDays) == 14
