"""CreateServices: the ECS services, attached to their registries (existing ACTIVE ones adopted)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import CreateServicesInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import services


@step("CreateServices")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CreateServicesInput.model_validate(event)
    settings = get_settings()
    state = services.create_or_adopt_services(
        get_clients(),
        Caller.from_function_arn(context.invoked_function_arn),
        request.spec,
        request.registries,
        request.task_definition_by_name(),
        settings.services_poll,
        settings.max_workers,
        request.build,
        settings.service_writes_per_second,
    )
    count("ServicesCreated", sum(1 for action in state.actions.values() if action == "created"))
    return state.model_dump(mode="json")
