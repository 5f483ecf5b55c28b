"""Powertools Logger, Tracer and Metrics shared by the handlers, and the decorator that applies them."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.exceptions import HTTPClientError

from envbuild_lambda.errors import AwsUnavailable, EnvbuildError

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

logger = Logger()
metrics = Metrics()


def tracing_disabled() -> bool:
    """POWERTOOLS_TRACE_DISABLED (template parameter TraceAwsCalls): Lambda's active tracing still
    records each invocation; the X-Ray SDK's subsegments per AWS call are opt-in."""
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true")


@functools.cache
def tracer() -> Tracer:
    """The Powertools Tracer, made on first use: importing the X-Ray SDK builds a botocore client
    and costs about as much as importing boto3, so a cold start pays it only when tracing AWS
    calls is switched on (docs/benchmark.md)."""
    from aws_lambda_powertools import Tracer

    return Tracer()


R = TypeVar("R")
Handler = Callable[[dict[str, Any], LambdaContext], R]


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def step(name: str) -> Callable[[Handler[R]], Handler[R]]:
    """Wrap a handler: context in every log line (never the event), a trace segment, flushed metrics.

    A domain error is logged once with its name and re-raised: its class name becomes the Task's
    Error, which the state machine's Retry/Catch match.
    """

    def decorate(handler: Handler[R]) -> Handler[R]:
        @functools.wraps(handler)
        def run(event: dict[str, Any], context: LambdaContext) -> R:
            try:
                try:
                    return handler(event, context)
                except (HTTPClientError, BotocoreConnectionError) as error:
                    # The connection failed after the SDK's retries (a response may be lost after
                    # the change was applied: every step adopts what exists, so a retry is safe).
                    raise AwsUnavailable(f"{type(error).__name__}: {error}") from error
            except EnvbuildError as error:
                logger.warning(
                    "step failed",
                    extra={"step": name, "error": type(error).__name__, "cause": str(error)},
                )
                count("StepFailed")
                raise
            except Exception:
                # Not a domain error (a malformed event, a bug): still a failed step, and a
                # metric.
                count("StepFailed")
                raise

        traced_run: list[Handler[R]] = []

        @functools.wraps(run)
        def traced(event: dict[str, Any], context: LambdaContext) -> R:
            if tracing_disabled():
                return run(event, context)
            if not traced_run:
                traced_run.append(tracer().capture_lambda_handler(run, capture_response=False))
            return traced_run[0](event, context)

        @functools.wraps(handler)
        def flushed(event: dict[str, Any], context: LambdaContext) -> R:
            try:
                return traced(event, context)
            finally:
                # What Powertools' log_metrics does after the handler, but for its warning on an
                # empty set ("No application metrics to publish"): a step that publishes nothing
                # on a path (a poll that found the operation still running) is expected to, and
                # the warning would be a stderr line in its log group on every such invocation.
                if metrics.metric_set:
                    metrics.flush_metrics()
                # With metrics disabled (POWERTOOLS_METRICS_DISABLED, as on the emulator) the
                # flush publishes nothing and keeps the set: drop it, or a warm process reaches
                # 100 values of one metric and Powertools publishes them mid-invocation.
                if is_metrics_disabled():
                    metrics.clear_metrics()

        return logger.inject_lambda_context(flushed, log_event=False)

    return decorate
