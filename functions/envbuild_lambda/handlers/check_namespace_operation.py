"""CheckNamespaceOperation: one check of the Cloud Map operation (the ASL's Wait does the waiting)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.handlers.inputs import CheckNamespaceInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import namespace


@step("CheckNamespaceOperation")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CheckNamespaceInput.model_validate(event)
    state = namespace.check_operation(
        get_clients(), request.namespace, get_settings().namespace_poll
    )
    count("NamespaceOperationChecks")
    return state.model_dump(mode="json")
