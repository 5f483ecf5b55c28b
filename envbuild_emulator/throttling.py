"""ECS API rate quotas, enforced on the emulator's clock.

ECS throttles every account per Region with token buckets: each request takes a token, a bucket
holds at most ``burst`` tokens and refills at ``per_second`` (the sustained rate); an empty bucket
answers ``ThrottlingException`` ("Rate exceeded").
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html

moto has no throttling at all, so without this a workflow that fans out too widely would look fine
here and fail on AWS. The defaults are the sustained rates the issue names for the calls a build
makes in bulk, with the bucket no larger than one second of them (the conservative reading: a
burst larger than that is a bonus on AWS, never relied on).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envbuild_emulator.clock import Clock
from envbuild_emulator.moto_internals import Patcher, lookup


@dataclass(frozen=True)
class Quota:
    per_second: float
    burst: int


def default_quotas() -> dict[tuple[str, str], Quota]:
    return {
        # Task definition modification: about 1 per second sustained.
        ("ecs", "RegisterTaskDefinition"): Quota(1.0, 1),
        # Service modification: about 5 per second sustained.
        ("ecs", "CreateService"): Quota(5.0, 5),
        ("ecs", "UpdateService"): Quota(5.0, 5),
    }


@dataclass
class _Bucket:
    quota: Quota
    tokens: float
    stamp: float | None = None

    def take(self, now: float) -> bool:
        if self.stamp is not None and now > self.stamp:
            self.tokens = min(
                self.quota.burst, self.tokens + (now - self.stamp) * self.quota.per_second
            )
        self.stamp = now if self.stamp is None else max(self.stamp, now)
        if self.tokens >= 1.0 - 1e-9:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class ApiThrottling:
    """Token buckets per (service, action) on ``clock``; ``throttled`` counts the refusals."""

    clock: Clock
    quotas: dict[tuple[str, str], Quota] = field(default_factory=default_quotas)
    throttled: Counter[tuple[str, str]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets = {key: _Bucket(q, float(q.burst)) for key, q in self.quotas.items()}
        self._patcher = Patcher()

    def allow(self, service: str, action: str) -> bool:
        bucket = self._buckets.get((service, action))
        if bucket is None:
            return True
        with self._lock:
            if bucket.take(self.clock.now()):
                return True
            self.throttled[(service, action)] += 1
            return False

    def install(self) -> ApiThrottling:
        error_class = lookup("moto.core.exceptions", "JsonRESTError")
        allow = self.allow

        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            def call_action(response: Any) -> Any:
                service = str(response.service_name or "")
                action = str(response._get_action())
                if not allow(service, action):
                    raise error_class("ThrottlingException", "Rate exceeded")
                return original(response)

            return call_action

        self._patcher.replace("moto.core.responses", "BaseResponse.call_action", wrap)
        return self

    def uninstall(self) -> None:
        self._patcher.restore()
