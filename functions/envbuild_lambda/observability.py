"""Powertools Logger, Tracer and Metrics shared by the handlers, and the decorator that applies them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.exceptions import HTTPClientError

from envbuild_lambda.errors import AwsUnavailable, EnvbuildError

logger = Logger()
tracer = Tracer()
metrics = Metrics()

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
                # metric, so that the flush never finds an empty set.
                count("StepFailed")
                raise

        traced = tracer.capture_lambda_handler(run, capture_response=False)
        with_metrics = metrics.log_metrics(traced)

        @functools.wraps(handler)
        def flushed(event: dict[str, Any], context: LambdaContext) -> R:
            try:
                result: R = with_metrics(event, context)
                return result
            finally:
                # With metrics disabled (POWERTOOLS_METRICS_DISABLED, as on the emulator) the
                # flush publishes nothing and keeps the set: drop it after the flush (before it,
                # the flush would warn "No application metrics to publish"), or a warm process
                # reaches 100 values of one metric and powertools publishes them mid-invocation.
                if is_metrics_disabled():
                    metrics.clear_metrics()

        return logger.inject_lambda_context(flushed, log_event=False)

    return decorate
