"""ValidateSpec: the workflow's first state. Makes no AWS call."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller
from envbuild_lambda.observability import count, step
from envbuild_lambda.spec import normalize, parse_spec, state_form
from envbuild_lambda.steps.summary import check_state_size


@step("ValidateSpec")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    caller = Caller.from_function_arn(context.invoked_function_arn)
    spec = normalize(parse_spec(event), partition=caller.partition, account_id=caller.account_id)
    check_state_size(spec)
    count("ServicesRequested", len(spec.services))
    return {"spec": state_form(spec)}
