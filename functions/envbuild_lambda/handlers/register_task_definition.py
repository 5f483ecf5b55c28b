"""RegisterTaskDefinition: one service's log group and Fargate task definition (a Map iteration)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import RegisterTaskDefinitionInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.steps import task_definitions


@step("RegisterTaskDefinition")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RegisterTaskDefinitionInput.model_validate(event)
    ref = task_definitions.register(
        get_clients(),
        Caller.from_function_arn(context.invoked_function_arn),
        request.environment,
        request.service,
        request.executionRoleArn,
        request.taskRoleArn,
        request.build,
    )
    count("TaskDefinitionsRegistered")
    return ref.model_dump(mode="json")
