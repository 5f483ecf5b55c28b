"""Every spec error at once: a cross-field rule (the Fargate cpu/memory pair) is reported with the
field errors of the same service, not only once they are fixed."""

from __future__ import annotations

import pytest

from envbuild_lambda.errors import InvalidSpec
from envbuild_lambda.spec import parse_spec

from .conftest import workshop_spec


def test_a_bad_cpu_memory_pair_is_reported_with_the_field_errors_of_its_service() -> None:
    spec = workshop_spec()
    spec["services"][0] |= {"prot": 80, "cpu": "256", "memory": "4096"}  # a typo and a bad pair
    spec["services"][1] |= {"desiredCount": -1, "cpu": 3}  # a bad count and a bad cpu

    with pytest.raises(InvalidSpec) as raised:
        parse_spec(spec)

    message = str(raised.value)
    assert message.startswith("4 problem(s) in the spec: ")
    assert "services[0].prot: unknown field (did you mean 'port'?)" in message
    assert "services[0]: memory 4096 is not valid with cpu 256 on Fargate; use 512..2048" in message
    assert "services[1].desiredCount: " in message
    assert "services[1]: cpu 3 is not a Fargate size" in message


def test_a_bad_pair_alone_is_reported_once() -> None:
    spec = workshop_spec()
    spec["services"][0] |= {"cpu": "512", "memory": "512"}

    with pytest.raises(InvalidSpec) as raised:
        parse_spec(spec)

    assert str(raised.value).count("memory 512 is not valid with cpu 512") == 1
