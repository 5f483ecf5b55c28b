"""CheckNamespaceOperation: one check of the Cloud Map operation (the ASL's Wait does the waiting).

The same function serves the build's failure path ("Find/Check Namespace Operations In Flight",
an event with ``namespaceOperations`` instead of ``namespace``): one look at the namespace
creations still running, which the rollback waits for (steps.namespace.check_operations_in_flight).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.handlers.inputs import CheckNamespaceInput, NamespaceOperationsInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import namespace


@step("CheckNamespaceOperation")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "namespaceOperations" not in event:
        request = CheckNamespaceInput.model_validate(event)
        state = namespace.check_operation(
            get_clients(), request.namespace, get_settings().namespace_poll
        )
        count("NamespaceOperationChecks")
        return state.model_dump(mode="json")
    in_flight = NamespaceOperationsInput.model_validate(event)
    operations = namespace.check_operations_in_flight(
        get_clients(), in_flight.namespaceOperations, get_settings().namespace_poll
    )
    count("NamespaceOperationsInFlightChecks")
    return operations.model_dump(mode="json")
