"""AcquireLock: one build or teardown per environment at a time (EnvironmentBusy otherwise)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.handlers.inputs import LockInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import lock


@step("AcquireLock")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = LockInput.model_validate(event)
    settings = get_settings()
    held = lock.acquire(
        get_clients(),
        settings.require_lock_table(),
        request.environment,
        request.executionArn,
        settings.lock_ttl_seconds,
    )
    count("LocksAcquired")
    return held
