"""RegisterTaskDefinitions: one batch of services' log groups and Fargate task definitions (the
state machine splits the spec's services into batches and runs them one after another)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import RegisterTaskDefinitionsInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import record, task_definitions


@step("RegisterTaskDefinitions")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    """Service name -> "family:revision" for the batch (the log group is /ecs/<family>)."""
    request = RegisterTaskDefinitionsInput.model_validate(event)
    settings = get_settings()
    clients = get_clients()
    # The override keys earlier builds applied (a key the spec dropped is removed).
    recorded = record.read(clients, settings.require_record_table(), request.environment)
    refs = task_definitions.register_all(
        clients,
        Caller.from_function_arn(context.invoked_function_arn),
        request.environment,
        request.services,
        request.executionRoleArn,
        request.taskRoleArn,
        request.build,
        settings.max_workers,
        settings.task_definition_writes_per_second,
        spec_tags=request.tags,
        log_retention_days=request.logRetentionDays,
        recorded=recorded,
    )
    count("TaskDefinitionsRegistered", len(refs))
    return {ref.name: ref.taskDefinition for ref in refs}
