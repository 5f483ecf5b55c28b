"""VerifyDns: the three-way check per DNS name, then the outputs (SSM parameters).

Returns what the rest of the build needs, and only that (the state's ResultPath is ``$``): the
spec as it came in and the build's summary with its outputs. The working state of the steps
before (``build``, ``deployment``, ``lock``) ends here, so that no later state carries it: a
200-service build stays far below Step Functions' 256 KiB per state (docs/benchmark.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.errors import DiscoveryMismatch
from envbuild_lambda.handlers.inputs import VerifyDnsInput
from envbuild_lambda.observability import count, metrics, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import outputs, verify


def build_seconds(started_at: str | None, now: datetime | None = None) -> float | None:
    """Seconds since the execution started ($$.Execution.StartTime, ISO 8601)."""
    if not started_at:
        return None
    try:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - start).total_seconds())


@step("VerifyDns")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = VerifyDnsInput.model_validate(event)
    clients = get_clients()
    settings = get_settings()
    try:
        summary = verify.verify(
            clients,
            Caller.from_function_arn(context.invoked_function_arn),
            request.spec,
            request.namespace,
            request.registries,
            request.task_definition_by_name(),
            settings.max_workers,
            [] if request.spec.prune else request.removed,
            request.changes,
        )
    except DiscoveryMismatch:
        count("VerificationFailures")
        raise
    summary["outputs"] = outputs.outputs(
        str(summary["namespace"]["id"]),
        {s.name: request.registries[s.name] for s in request.spec.services},
    )
    outputs.write_parameters(
        clients, request.spec.environment, summary["outputs"], settings.max_workers, request.build
    )
    # one name per output: <parameterPath><output name>
    summary["parameterPath"] = outputs.parameter_path(request.spec.environment)
    count("DnsNamesVerified", len(summary["services"]))
    count("ServicesBuilt", len(summary["services"]))
    count("StaticInstancesRegistered", sum(len(s.instances) for s in request.spec.services))
    seconds = build_seconds(request.startedAt)
    if seconds is not None:
        metrics.add_metric(name="BuildDuration", unit=MetricUnit.Seconds, value=seconds)
    return {"spec": event["spec"], "summary": summary}
