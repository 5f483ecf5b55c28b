"""CheckCloudMapOperations: one check of the pending Cloud Map operations of a teardown step."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.observability import count, step
from envbuild_lambda.removal import OperationsInput
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import teardown


@step("CheckCloudMapOperations")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = OperationsInput.model_validate(event)
    settings = get_settings()
    progress = teardown.check_operations(
        get_clients(), request.progress, settings.teardown_poll, settings.max_workers
    )
    count("CloudMapOperationChecks")
    return progress.model_dump(mode="json")
