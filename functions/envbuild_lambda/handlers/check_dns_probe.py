"""CheckDnsProbe: one check of the probe task; when it stopped, each name's answers (or
ProbeFailed naming the names that did not resolve)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.errors import ProbeFailed
from envbuild_lambda.handlers.inputs import CheckProbeInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import probe


@step("CheckDnsProbe")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CheckProbeInput.model_validate(event)
    try:
        state = probe.check_probe(
            get_clients(), request.spec, request.probe, get_settings().services_poll
        )
    except ProbeFailed:
        count("VerificationFailures")
        raise
    count("DnsProbeChecks")
    return state.model_dump(mode="json")
