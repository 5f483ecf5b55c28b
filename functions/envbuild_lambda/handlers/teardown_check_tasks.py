"""CheckTasksStopped: one check that the scaled-down services' tasks stopped and left Cloud Map."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.observability import count, step
from envbuild_lambda.removal import StepInput
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import teardown


@step("CheckTasksStopped")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = StepInput.model_validate(event)
    settings = get_settings()
    progress = teardown.check_tasks_stopped(
        get_clients(),
        request.removal_plan(),
        request.require_progress(),
        settings.teardown_poll,
        settings.max_workers,
    )
    count("TaskStopChecks")
    return progress.model_dump(mode="json")
