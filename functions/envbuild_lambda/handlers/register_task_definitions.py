"""RegisterTaskDefinitions: the pipelined build's task definitions and ECS service creations
(steps/pipeline.py).

Two states invoke it: the Parallel's branch "Register Task Definitions" (event with the spec:
task definitions while the namespace is created) and, after the registries
exist, the loop "Register Task Definitions And Create Services" (event with ``pipeline``: the
remaining task definitions, each missing ECS service created once its task definition is
registered). Both return the loop's state (``state.Pipeline``), each invocation at most
PIPELINE_BUDGET_SECONDS of work.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import PipelineInput, RegisterTaskDefinitionsInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import pipeline, record


@step("RegisterTaskDefinitions")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    caller = Caller.from_function_arn(context.invoked_function_arn)
    clients = get_clients()
    if "pipeline" not in event:  # the Parallel's branch
        first = RegisterTaskDefinitionsInput.model_validate(event)
        state = pipeline.while_namespace_is_created(
            clients,
            caller,
            first.spec,
            # The override keys earlier builds applied (a key the spec dropped is removed).
            record.read(clients, settings.require_record_table(), first.spec.environment),
            first.build,
            settings.pipeline_budget_seconds,
            settings.task_definition_writes_per_second,
        )
        count("TaskDefinitionsRegistered", len(state.taskDefinitions))
        return state.model_dump(mode="json")
    request = PipelineInput.model_validate(event)
    before = request.pipeline
    state = pipeline.advance(
        clients,
        caller,
        request.spec,
        record.read(clients, settings.require_record_table(), request.spec.environment),
        request.registries,
        before,
        request.build,
        settings.pipeline_budget_seconds,
        settings.task_definition_writes_per_second,
        settings.service_writes_per_second,
    )
    count("TaskDefinitionsRegistered", len(state.taskDefinitions) - len(before.taskDefinitions))
    count("ServicesHandled", state.servicesDone - before.servicesDone)
    return state.model_dump(mode="json")
