"""What the functions log: never the spec's environment values, which may be secrets.

The handlers run in this process (the emulator dispatches each Lambda ARN to its handler), so
their log lines are the records emitted while an invocation is current (the powertools logger's,
the SDK's, any library's). They are rendered with the powertools formatter (JSON with every extra
key, as Lambda writes them), with the root and the function logger at DEBUG, the most talkative
level a deployer can choose (LogLevel parameter): what is absent at DEBUG is absent at INFO.
botocore logs request bodies at DEBUG; envbuild_lambda.aws keeps the SDK's loggers at INFO.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from envbuild_emulator.calls import current_function
from tests.workflow.helpers import run_build

#: Values shaped like what people put in environment variables and must never see in logs.
SECRETS = {
    "DB_PASSWORD": "hunter2-Zq8v-s3cr3t-7f3a9c",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8vSECRETKEY",
    "API_TOKEN": "ghp_1a2B3c4D5e6F7g8H9i0JkLmNoPqRsTuVwXyZ",
}
#: Emulator-side loggers: they would not run inside Lambda.
NOT_LAMBDA = ("moto", "werkzeug", "envbuild_emulator")


class InvocationLines(logging.Handler):
    """Formats every record emitted while a Lambda invocation is current."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if current_function() is None or record.name.startswith(NOT_LAMBDA):
            return
        self.lines.append(self.format(record))


@pytest.fixture
def lambda_log_lines(emulator: Any) -> Iterator[list[str]]:
    from envbuild_lambda.observability import logger

    handler = InvocationLines(logger.registered_formatter)
    root = logging.getLogger()
    saved = (root.level, logger.log_level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        logger.setLevel(saved[1])


def with_secrets(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for service in spec["services"]:
        service["environment"] = {**service.get("environment", {}), **SECRETS}
    return spec


def leaks(lines: list[str], *extra: str) -> list[str]:
    return [line for line in lines if any(s in line for s in (*SECRETS.values(), *extra))]


def test_secret_looking_environment_values_appear_in_no_log_line(
    emulator: Any, workshop_spec: dict[str, Any], lambda_log_lines: list[str]
) -> None:
    # Error paths are where values leak (a message quoting a request): the step that carries
    # the environment values fails (throttled). The step retries a throttled registration up to
    # pacing.THROTTLED_ATTEMPTS times itself, so more than N x (that - 1) throttles make it fail
    # at least once; each failure uses up at least that many, and the state machine retries.
    from envbuild_lambda.pacing import THROTTLED_ATTEMPTS

    services = len(workshop_spec["services"])
    emulator.aws_faults.throttle(
        "ecs", "RegisterTaskDefinition", times=services * (THROTTLED_ATTEMPTS - 1) + 1
    )
    described, _history = run_build(emulator, with_secrets(workshop_spec))
    assert described["status"] == "SUCCEEDED", described.get("cause")
    teardown = emulator.wait(emulator.start_teardown(with_secrets(workshop_spec)))
    assert teardown["status"] == "SUCCEEDED", teardown.get("cause")

    # The values did travel through the functions (into the task definitions), and the
    # functions' lines were captured, with powertools' Lambda context: the absence below is not
    # for want of either. (The steps log their failures; a clean run logs next to nothing.)
    registered = emulator.client("ecs").describe_task_definition(taskDefinition="workshop_web")
    environment = {
        e["name"]: e["value"]
        for e in registered["taskDefinition"]["containerDefinitions"][0]["environment"]
    }
    assert {k: environment[k] for k in SECRETS} == SECRETS
    failed = [line for line in lambda_log_lines if '"message":"step failed"' in line]
    assert any('"error":"AwsThrottled"' in line for line in failed), lambda_log_lines
    assert all('"function_name":"envbuild-' in line for line in failed)

    assert leaks(lambda_log_lines) == []


def test_an_invalid_environment_value_is_named_but_never_echoed(
    emulator: Any, workshop_spec: dict[str, Any], lambda_log_lines: list[str]
) -> None:
    spec = with_secrets(workshop_spec)
    spec["services"][0]["environment"]["PIN"] = 846213957  # a number: not a string value

    described, _history = run_build(emulator, spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidSpec"
    cause = json.loads(described["cause"])["errorMessage"]
    assert "services[0].environment.PIN" in cause  # the field is named ...
    assert "846213957" not in cause  # ... its value is not, in the error a user sees
    assert any("InvalidSpec" in line for line in lambda_log_lines)  # the failure was logged
    assert leaks(lambda_log_lines, "846213957") == []
