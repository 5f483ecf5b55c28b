"""StartDnsProbe: the probe's log group and task definition, and one probe task (verify.probe)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import SpecInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import probe


@step("StartDnsProbe")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SpecInput.model_validate(event)
    state = probe.start_probe(
        get_clients(),
        request.spec,
        Caller.from_function_arn(context.invoked_function_arn).region,
        get_settings().services_poll,
        request.build,
    )
    count("DnsProbesStarted")
    return state.model_dump(mode="json")
