"""PlanChanges (plan: true): preflight, then what a build of the spec would change. Reads only.

The plan runs without the environment's lock: it changes nothing, so it can neither disturb a
running build nor be disturbed beyond showing the account as it is at that moment.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import SpecInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import converge, preflight


@step("PlanChanges")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SpecInput.model_validate(event)
    clients = get_clients()
    caller = Caller.from_function_arn(context.invoked_function_arn)
    # conflicts: rows of the plan
    checked = preflight.preflight(clients, request.spec, conflicts=False, caller=caller)
    rows = converge.plan_changes(
        clients,
        caller,
        request.spec,
        get_settings().max_workers,
    )
    output = converge.plan_output(request.spec, rows)
    if checked["warnings"]:
        output["warnings"] = checked["warnings"]
    count("PlansMade")
    count("PlannedChanges", output["changing"])
    return output
