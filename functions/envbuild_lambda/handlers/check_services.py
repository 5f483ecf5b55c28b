"""CheckServices: one readiness check (running = desired, every task registered in Cloud Map)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.handlers.inputs import CheckServicesInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import services


@step("CheckServices")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CheckServicesInput.model_validate(event)
    settings = get_settings()
    state = services.check_services(
        get_clients(),
        request.spec,
        request.registries,
        request.deployment,
        settings.services_poll,
        settings.max_workers,
        request.taskDefinitions,
    )
    count("ServiceReadinessChecks")
    return state.model_dump(mode="json")
