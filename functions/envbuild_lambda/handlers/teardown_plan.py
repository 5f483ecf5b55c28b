"""PlanTeardown: discover by tags what envbuild manages for the environment of a spec."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.observability import count, step
from envbuild_lambda.removal import PlanInput, split_options
from envbuild_lambda.settings import get_settings
from envbuild_lambda.spec import parse_spec
from envbuild_lambda.steps import teardown


@step("PlanTeardown")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PlanInput.model_validate(event)
    spec_fields, options = split_options(request.input)
    plan = teardown.plan_teardown(
        get_clients(),
        Caller.from_function_arn(context.invoked_function_arn),
        parse_spec(spec_fields),
        delete_log_groups=options["deleteLogGroups"],
        deregister_task_definitions=options["deregisterTaskDefinitions"],
        max_workers=get_settings().max_workers,
        created_by=options["createdBy"],
    )
    count("TeardownsPlanned")
    count("ResourcesKept", len(plan.kept))
    planned: dict[str, Any] = {"plan": plan.model_dump(mode="json")}
    if "lock" in request.input:  # this step replaces the state: carry the lock it runs under
        planned["lock"] = request.input["lock"]
    return planned
