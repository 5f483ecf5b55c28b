"""Preflight: everything the build needs exists and is usable; reads only, changes nothing."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.handlers.inputs import SpecInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import preflight


@step("Preflight")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SpecInput.model_validate(event)
    result = preflight.preflight(
        get_clients(), request.spec, max_workers=get_settings().max_workers
    )
    count("PreflightPassed")
    return result
