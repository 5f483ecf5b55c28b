"""Configuration of the functions: a frozen dataclass read once from the environment."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PollSchedule:
    """A bounded poll with growing waits: initial, doubled each time, capped; at most max_attempts."""

    initial_seconds: int
    max_seconds: int
    max_attempts: int

    def wait_before(self, attempt: int) -> int:
        """Seconds to wait before check number ``attempt`` (0-based)."""
        return int(min(self.initial_seconds * 2 ** min(attempt, 30), self.max_seconds))

    def budget_seconds(self) -> int:
        return sum(self.wait_before(attempt) for attempt in range(self.max_attempts))


@dataclass(frozen=True)
class Settings:
    namespace_poll: PollSchedule
    services_poll: PollSchedule
    #: Concurrency of the batch steps (registries, services) inside one invocation.
    max_workers: int
    #: DynamoDB table of the one-build-per-environment locks, and how long a lock holds at most
    #: (the state machine's own TimeoutSeconds).
    lock_table: str = ""
    lock_ttl_seconds: int = 7200

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
                number("NAMESPACE_POLL_INITIAL_SECONDS", 5),
                number("NAMESPACE_POLL_MAX_SECONDS", 30),
                number("NAMESPACE_POLL_MAX_ATTEMPTS", 20),
            ),
            services_poll=PollSchedule(
                number("SERVICES_POLL_INITIAL_SECONDS", 10),
                number("SERVICES_POLL_MAX_SECONDS", 30),
                number("SERVICES_POLL_MAX_ATTEMPTS", 40),
            ),
            max_workers=number("ENVBUILD_MAX_WORKERS", 4),
            lock_table=env.get("LOCK_TABLE_NAME", ""),
            lock_ttl_seconds=number("LOCK_TTL_SECONDS", 7200),
        )

    def require_lock_table(self) -> str:
        if not self.lock_table:
            raise ValueError(
                "environment variable LOCK_TABLE_NAME is not set (template.yaml sets it)"
            )
        return self.lock_table


@functools.cache
def get_settings() -> Settings:
    """The settings of this process, read on first use (not at import)."""
    return Settings.from_env(os.environ)
