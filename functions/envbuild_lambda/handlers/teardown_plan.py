"""PlanTeardown: what the teardown may remove. From a spec: what the environment record lists
and the tags mark as the environment's (the place taken from the record). From a given
``{"plan": ...}``: the plan, checked against the record and the tags (InvalidPlan otherwise)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.observability import count, step
from envbuild_lambda.removal import PlanInput, parse_plan, split_options
from envbuild_lambda.settings import get_settings
from envbuild_lambda.spec import parse_spec
from envbuild_lambda.steps import record, teardown


@step("PlanTeardown")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PlanInput.model_validate(event)
    clients, settings = get_clients(), get_settings()
    caller = Caller.from_function_arn(context.invoked_function_arn)
    spec_fields, options = split_options(request.input)
    if "plan" in request.input:
        given = parse_plan(request.input["plan"])
        environment = given.environment or ""
        plan = teardown.verify_plan(
            clients,
            caller,
            given,
            record.read(clients, settings.require_record_table(), environment),
            created_by=options["createdBy"],
        )
    else:
        spec = parse_spec(spec_fields)
        plan = teardown.plan_teardown(
            clients,
            caller,
            spec,
            record.read(clients, settings.require_record_table(), spec.environment),
            delete_log_groups=options["deleteLogGroups"],
            deregister_task_definitions=options["deregisterTaskDefinitions"],
            max_workers=settings.max_workers,
            created_by=options["createdBy"],
        )
    count("TeardownsPlanned")
    count("ResourcesKept", len(plan.kept))
    planned: dict[str, Any] = {"plan": plan.model_dump(mode="json")}
    if "lock" in request.input:  # this step replaces the state: carry the lock it runs under
        planned["lock"] = request.input["lock"]
    return planned
