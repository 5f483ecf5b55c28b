"""ReleaseLock: on every exit path of a build, success or failure."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.handlers.inputs import LockInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import lock


@step("ReleaseLock")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = LockInput.model_validate(event)
    released = lock.release(
        get_clients(),
        get_settings().require_lock_table(),
        request.environment,
        request.executionArn,
    )
    count("LocksReleased" if released else "LocksNotHeld")
    return {"released": released}
