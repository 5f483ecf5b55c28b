"""FinishTeardown: the plan's log groups, task definition revisions and output SSM parameters;
then the environment record forgets what is gone; then the summary."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.observability import count, step
from envbuild_lambda.removal import FinishInput
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import record, teardown


@step("FinishTeardown")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = FinishInput.model_validate(event)
    plan = request.removal_plan()
    clients, settings = get_clients(), get_settings()
    workers = settings.max_workers
    log_groups = teardown.delete_log_groups(clients, plan.logGroups, workers)
    running = teardown.in_use(clients, plan.cluster, plan.taskDefinitions)
    revisions = teardown.deregister_task_definitions(
        clients, [r for r in plan.taskDefinitions if r not in running], workers
    )
    parameters = teardown.delete_parameters(clients, plan.parameters)
    count("LogGroupsDeleted", len(log_groups))
    count("TaskDefinitionsDeregistered", len(revisions))
    count("ParametersDeleted", len(parameters))
    if plan.environment:
        record.forget(
            clients,
            settings.require_record_table(),
            plan.environment,
            teardown.gone_names(clients, plan),
            namespace=plan.namespace is not None or "namespace" in plan.forget,
        )
    return teardown.summarize(plan, request.removed, log_groups, revisions, parameters)
