"""ECS and Cloud Map API rate quotas, enforced on the emulator's clock.

ECS throttles every account per Region with token buckets: each request takes a token, a bucket
holds at most ``burst`` tokens and refills at ``per_second`` (the sustained rate); an empty bucket
answers ``ThrottlingException`` ("Rate exceeded").
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html

moto has no throttling at all, so without this a workflow that fans out too widely would look fine
here and fail on AWS. The defaults are the sustained rates the issue names for the calls a build
makes in bulk, with the bucket no larger than one second of them (the conservative reading: a
burst larger than that is a bonus on AWS, never relied on).

The reads a build polls in bulk have buckets too (issue 18), with the same convention:

- ECS DescribeServices, DescribeTasks, ListTasks: 20 per second sustained (AWS: burst 100). The
  request-throttling page above lists them; the figures used here are the ones quoted from it in
  ../shared/notes/local-emulation.md (DescribeServices 100 / 20) and, for DescribeTasks, in
  aws-solutions/workload-discovery-on-aws pull request 355 ("approx 20TPS"); ListTasks is taken
  as the same task-read rate (an assumption: the stored excerpts of the page did not show its row).
- Cloud Map DiscoverInstances: 1,000 per second sustained, burst 2,000, the one Cloud Map API
  whose rate AWS documents (https://docs.aws.amazon.com/cloud-map/latest/dg/throttling.html);
  Cloud Map answers ``RequestLimitExceeded``.
- Cloud Map GetInstancesHealthStatus, ListInstances, GetOperation, GetService: AWS documents no
  rate for them (neither the throttling page, which covers DiscoverInstances only, nor the
  service's quotas in the General Reference). The emulator assumes 20 per second, bucket 20: the
  lowest documented read rate among the services a build reads (ECS's), a conservative choice.
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


#: The error each service answers when a bucket is empty.
THROTTLING_ERROR = {"servicediscovery": "RequestLimitExceeded"}
DEFAULT_THROTTLING_ERROR = "ThrottlingException"

#: Reads (module docstring): (service, action) -> sustained rate per second; the emulator's bucket
#: holds one second of it. The Lambda functions pace the same calls at these rates
#: (envbuild_lambda.pacing.READ_RATES, tests/emulator/test_models_throttling.py checks they agree).
READ_RATES: dict[tuple[str, str], float] = {
    ("ecs", "DescribeServices"): 20.0,
    ("ecs", "DescribeTasks"): 20.0,
    ("ecs", "ListTasks"): 20.0,
    ("servicediscovery", "DiscoverInstances"): 1000.0,
    ("servicediscovery", "GetInstancesHealthStatus"): 20.0,
    ("servicediscovery", "ListInstances"): 20.0,
    ("servicediscovery", "GetOperation"): 20.0,
    ("servicediscovery", "GetService"): 20.0,
}


def default_quotas() -> dict[tuple[str, str], Quota]:
    return {
        # Task definition modification: about 1 per second sustained.
        ("ecs", "RegisterTaskDefinition"): Quota(1.0, 1),
        # Service modification: about 5 per second sustained.
        ("ecs", "CreateService"): Quota(5.0, 5),
        ("ecs", "UpdateService"): Quota(5.0, 5),
        **{key: Quota(rate, int(rate)) for key, rate in READ_RATES.items()},
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
                    code = THROTTLING_ERROR.get(service, DEFAULT_THROTTLING_ERROR)
                    raise error_class(code, "Rate exceeded")
                return original(response)

            return call_action

        self._patcher.replace("moto.core.responses", "BaseResponse.call_action", wrap)
        return self

    def uninstall(self) -> None:
        self._patcher.restore()
