"""Preflight: everything the build needs exists and is usable (reads only); then, before anything
is created, the environment record takes the place and the names this build may create."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import SpecInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import preflight, record


@step("Preflight")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SpecInput.model_validate(event)
    clients = get_clients()
    result = preflight.preflight(
        clients,
        request.spec,
        max_workers=get_settings().max_workers,
        caller=Caller.from_function_arn(context.invoked_function_arn),
    )
    count("PreflightPassed")
    record.claim(clients, get_settings().require_record_table(), request.spec, request.build)
    return result
