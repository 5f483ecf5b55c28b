"""VerifyDns: every DNS name answers with its running tasks' IPs; returns the build's summary."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import VerifyDnsInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import verify


@step("VerifyDns")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = VerifyDnsInput.model_validate(event)
    summary = verify.verify(
        get_clients(),
        Caller.from_function_arn(context.invoked_function_arn),
        request.spec,
        request.namespace,
        request.registries,
        request.task_definition_by_name(),
        get_settings().max_workers,
        [] if request.spec.prune else request.removed,
    )
    count("DnsNamesVerified", len(summary["services"]))
    return summary
