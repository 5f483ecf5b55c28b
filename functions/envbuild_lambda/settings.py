"""Configuration of the functions: a frozen dataclass read once from the environment."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

#: The build's two polls check every FINE_POLL_SECONDS for the first FINE_WINDOW_SECONDS after
#: their first check (the span in which the operation most likely ends: a namespace 50-70 s after
#: it was asked for, a task 30-50 s after its service), then every ``interval_seconds``. The
#: first check is still timed on the operation's start; the window bounds how much later than
#: the operation the build can see it end (2 s instead of up to an interval) at the cost of at
#: most FINE_WINDOW_SECONDS / FINE_POLL_SECONDS more checks (docs/benchmark.md).
FINE_POLL_SECONDS = 2
FINE_WINDOW_SECONDS = 20


@dataclass(frozen=True)
class PollSchedule:
    """A bounded poll: a first wait close to the operation's usual duration, then short steady
    checks; at most ``max_attempts`` checks.

    The first check lands where the AWS operation usually ends (a Cloud Map namespace about a
    minute, a Fargate task about 35 s to run and register), so the build sees it done within one
    ``interval_seconds`` of it finishing, with few checks. A doubling schedule overshoots by up to
    its last wait (docs/benchmark.md). With ``fine_seconds``, the checks of the first
    ``fine_window_seconds`` after the first one come every ``fine_seconds`` (at most
    ``interval_seconds``) instead."""

    first_seconds: int
    interval_seconds: int
    max_attempts: int
    fine_seconds: int = 0
    fine_window_seconds: int = 0

    def wait_before(self, attempt: int) -> int:
        """Seconds to wait before check number ``attempt`` (0-based)."""
        if attempt == 0:
            return self.first_seconds
        if self.fine_seconds > 0 and (attempt - 1) * self.fine_seconds < self.fine_window_seconds:
            return min(self.fine_seconds, self.interval_seconds)
        return self.interval_seconds

    def budget_seconds(self) -> int:
        return sum(self.wait_before(attempt) for attempt in range(self.max_attempts))


@dataclass(frozen=True)
class Settings:
    namespace_poll: PollSchedule
    services_poll: PollSchedule
    #: Every wait of the teardown (tasks stopping, services draining, Cloud Map operations).
    teardown_poll: PollSchedule
    #: Concurrency of the batch steps (registries, services) inside one invocation.
    max_workers: int
    #: Client-side pacing of the ECS calls with low account-wide quotas (envbuild_lambda.pacing):
    #: RegisterTaskDefinition, and CreateService/UpdateService, per second.
    task_definition_writes_per_second: int = 1
    service_writes_per_second: int = 5
    #: Seconds of work of one invocation of the pipelined build (steps/pipeline.py): the
    #: namespace branch's task definitions, then each turn of the loop that registers the rest
    #: and creates the services (well inside the function's 120 s timeout).
    pipeline_budget_seconds: int = 60
    #: DynamoDB table of the one-build-per-environment locks, and how long a lock holds at most
    #: (the state machine's own TimeoutSeconds).
    lock_table: str = ""
    lock_ttl_seconds: int = 7200
    #: DynamoDB table of the environment records (envbuild_lambda.steps.record).
    record_table: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def number(name: str, default: int, minimum: int = 1) -> int:
            raw = env.get(name, "")
            try:
                value = int(raw) if raw else default
            except ValueError as error:
                raise ValueError(
                    f"environment variable {name} must be a whole number, got {raw!r}"
                ) from error
            if value < minimum:
                raise ValueError(f"environment variable {name} must be >= {minimum}, got {value}")
            return value

        return cls(
            namespace_poll=PollSchedule(
                number("NAMESPACE_POLL_FIRST_SECONDS", 50, minimum=0),
                number("NAMESPACE_POLL_INTERVAL_SECONDS", 5),
                number("NAMESPACE_POLL_MAX_ATTEMPTS", 60),
                FINE_POLL_SECONDS,
                FINE_WINDOW_SECONDS,
            ),
            services_poll=PollSchedule(
                number("SERVICES_POLL_FIRST_SECONDS", 30, minimum=0),
                number("SERVICES_POLL_INTERVAL_SECONDS", 5),
                number("SERVICES_POLL_MAX_ATTEMPTS", 120),
                FINE_POLL_SECONDS,
                FINE_WINDOW_SECONDS,
            ),
            teardown_poll=PollSchedule(
                number("TEARDOWN_POLL_FIRST_SECONDS", 5, minimum=0),
                number("TEARDOWN_POLL_INTERVAL_SECONDS", 5),
                number("TEARDOWN_POLL_MAX_ATTEMPTS", 180),
            ),
            max_workers=number("ENVBUILD_MAX_WORKERS", 4),
            task_definition_writes_per_second=number("ECS_TASK_DEFINITION_WRITES_PER_SECOND", 1),
            service_writes_per_second=number("ECS_SERVICE_WRITES_PER_SECOND", 5),
            pipeline_budget_seconds=number("PIPELINE_BUDGET_SECONDS", 60),
            lock_table=env.get("LOCK_TABLE_NAME", ""),
            lock_ttl_seconds=number("LOCK_TTL_SECONDS", 7200),
            record_table=env.get("RECORD_TABLE_NAME", ""),
        )

    def require_lock_table(self) -> str:
        if not self.lock_table:
            raise ValueError(
                "environment variable LOCK_TABLE_NAME is not set (template.yaml sets it)"
            )
        return self.lock_table

    def require_record_table(self) -> str:
        if not self.record_table:
            raise ValueError(
                "environment variable RECORD_TABLE_NAME is not set (template.yaml sets it)"
            )
        return self.record_table


@functools.cache
def get_settings() -> Settings:
    """The settings of this process, read on first use (not at import)."""
    return Settings.from_env(os.environ)
