"""DeregisterInstances: every instance still in the plan's registries (static ones too)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.observability import count, step
from envbuild_lambda.removal import StepInput
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import teardown


@step("DeregisterInstances")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = StepInput.model_validate(event)
    settings = get_settings()
    progress = teardown.deregister_instances(
        get_clients(), request.removal_plan(), settings.teardown_poll, settings.max_workers
    )
    count("InstancesDeregistered", len(progress.removed))
    return progress.model_dump(mode="json")
