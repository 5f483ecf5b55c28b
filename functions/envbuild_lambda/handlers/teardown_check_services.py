"""CheckEcsServicesInactive: one check that the deleted ECS services are INACTIVE."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.observability import step
from envbuild_lambda.removal import StepInput
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import teardown


@step("CheckEcsServicesInactive")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = StepInput.model_validate(event)
    progress = teardown.check_services_inactive(
        get_clients(),
        request.removal_plan(),
        request.require_progress(),
        get_settings().teardown_poll,
    )
    return progress.model_dump(mode="json")
