"""Configuration of the functions: a frozen dataclass read once from the environment."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PollSchedule:
    """A bounded poll: a first wait close to the operation's usual duration, then short steady
    checks; at most ``max_attempts`` checks.

    The first check lands where the AWS operation usually ends (a Cloud Map namespace about a
    minute, a Fargate task about 35 s to run and register), so the build sees it done within one
    ``interval_seconds`` of it finishing, with few checks. A doubling schedule overshoots by up to
    its last wait (docs/benchmark.md)."""

    first_seconds: int
    interval_seconds: int
    max_attempts: int

    def wait_before(self, attempt: int) -> int:
        """Seconds to wait before check number ``attempt`` (0-based)."""
        return self.first_seconds if attempt == 0 else self.interval_seconds

    def budget_seconds(self) -> int:
        return self.first_seconds + self.interval_seconds * max(self.max_attempts - 1, 0)


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
            ),
            services_poll=PollSchedule(
                number("SERVICES_POLL_FIRST_SECONDS", 30, minimum=0),
                number("SERVICES_POLL_INTERVAL_SECONDS", 5),
                number("SERVICES_POLL_MAX_ATTEMPTS", 120),
            ),
            teardown_poll=PollSchedule(
                number("TEARDOWN_POLL_FIRST_SECONDS", 5, minimum=0),
                number("TEARDOWN_POLL_INTERVAL_SECONDS", 5),
                number("TEARDOWN_POLL_MAX_ATTEMPTS", 180),
            ),
            max_workers=number("ENVBUILD_MAX_WORKERS", 4),
            task_definition_writes_per_second=number("ECS_TASK_DEFINITION_WRITES_PER_SECOND", 1),
            service_writes_per_second=number("ECS_SERVICE_WRITES_PER_SECOND", 5),
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
