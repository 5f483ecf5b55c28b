"""CreateNamespace: adopt the namespace if it exists in the VPC, else start its creation."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.handlers.inputs import SpecInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import namespace


@step("CreateNamespace")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SpecInput.model_validate(event)
    state = namespace.create_or_adopt(
        get_clients(), request.spec, get_settings().namespace_poll, request.build
    )
    count("NamespacesAdopted" if state.adopted else "NamespacesRequested")
    return state.model_dump(mode="json")
