"""DeleteNamespace: start deleting the plan's namespace (an asynchronous Cloud Map operation)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.observability import step
from envbuild_lambda.removal import StepInput
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import teardown


@step("DeleteNamespace")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = StepInput.model_validate(event)
    progress = teardown.delete_namespace(
        get_clients(), request.removal_plan(), get_settings().teardown_poll
    )
    return progress.model_dump(mode="json")
