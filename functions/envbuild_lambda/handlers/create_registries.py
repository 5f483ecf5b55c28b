"""CreateRegistries: one Cloud Map service per spec service (existing ones in the namespace adopted)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.errors import NamespaceOperationFailed
from envbuild_lambda.handlers.inputs import CreateRegistriesInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import registries


@step("CreateRegistries")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CreateRegistriesInput.model_validate(event)
    if request.namespace.id is None:
        raise NamespaceOperationFailed(
            f"namespace {request.namespace.name} has no id: its creation did not succeed"
        )
    result, created = registries.create_missing_registries(
        get_clients(), request.spec, request.namespace.id, get_settings().max_workers, request.build
    )
    count("Registries", len(result))
    # The Cloud Map part of the build, as one object (the Parallel state's first branch output).
    return {
        "namespace": request.namespace.model_dump(mode="json"),
        "registries": result,
        "created": created,
    }
