"""The yardsticks of the benchmark: the quota-aware physical limit of a build, and its price.

``quota_limit`` is the earliest time at which every one of N services can answer in DNS on AWS,
whatever the workflow, given the modelled latencies (``envbuild_emulator.models.Latencies``) and
the ECS token buckets (``envbuild_emulator.throttling.default_quotas``): the same two tables the
emulator runs the build against. A build needs, for each service:

- the namespace (one Cloud Map operation: ``namespace_operation_seconds`` from t = 0), then its
  Cloud Map registry (a synchronous call, no modelled quota);
- its task definition: RegisterTaskDefinition calls draw on their bucket from t = 0 (they need
  nothing else, so they overlap the namespace operation);
- then CreateService (its bucket), once both exist; then its tasks start (``task_start_seconds``)
  and ECS registers them in Cloud Map (``registration_seconds``).

Services are taken in the order their task definitions were registered (any other order only
delays the last one). Lambda durations and API round trips are not counted: the limit is what AWS
itself allows.

``build_cost`` prices one build at us-east-1 list prices (cited in ``PRICES``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REGISTER = ("ecs", "RegisterTaskDefinition")
CREATE_SERVICE = ("ecs", "CreateService")


class Bucket:
    """A token bucket that starts full (an account with no recent ECS writes)."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = 0.0

    def take_at(self, earliest: float) -> float:
        """The first moment >= ``earliest`` at which a request gets a token (it takes it)."""
        now = max(earliest, self.stamp)
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens < 1.0 - 1e-9:
            wait = (1.0 - self.tokens) / self.per_second
            now += wait
            self.tokens += wait * self.per_second
            self.stamp = now
        self.tokens -= 1.0
        return now


def quota_limit(n: int, latencies: Any, quotas: Mapping[tuple[str, str], Any]) -> float:
    """Seconds from the start of a build of ``n`` services until the last one answers in DNS."""
    register = quotas[REGISTER]
    create = quotas[CREATE_SERVICE]
    registrations = Bucket(register.per_second, register.burst)
    creations = Bucket(create.per_second, create.burst)
    namespace_ready = float(latencies.namespace_operation_seconds)
    after_create = float(latencies.task_start_seconds) + float(latencies.registration_seconds)
    last = namespace_ready + after_create  # n = 0: the namespace alone
    for _ in range(n):
        registered = registrations.take_at(0.0)
        created = creations.take_at(max(namespace_ready, registered))
        last = max(last, created + after_create)
    return last


# --- price of one build (us-east-1 list prices) ---------------------------------------------------
@dataclass(frozen=True)
class Prices:
    #: Step Functions Standard: $0.025 per 1,000 state transitions
    per_transition: float = 0.025 / 1000
    #: Lambda, Arm: $0.0000133334 per GB-second (first 7.5 billion GB-s/month tier)
    per_gb_second_arm: float = 0.0000133334
    #: Lambda: $0.20 per 1M requests
    per_request: float = 0.20 / 1_000_000
    #: Lambda bills duration in 1 ms increments
    billing_granularity_s: float = 0.001


PRICES = Prices()
PRICE_SOURCES = (
    "https://aws.amazon.com/step-functions/pricing/",
    "https://aws.amazon.com/lambda/pricing/",
    # INIT billed like the invoke phase for on-demand ZIP functions on managed runtimes since
    # 2025-08-01: https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/
    "https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/",
)


@dataclass(frozen=True)
class Cost:
    transitions_usd: float
    requests_usd: float
    duration_usd: float  # invocations' billed duration, INIT included
    billed_gb_seconds: float
    init_gb_seconds: float

    @property
    def total_usd(self) -> float:
        return self.transitions_usd + self.requests_usd + self.duration_usd


def billed_seconds(seconds: float, prices: Prices = PRICES) -> float:
    step = prices.billing_granularity_s
    return max(step, math.ceil(seconds / step - 1e-9) * step)


def build_cost(
    transitions: int,
    durations_s: list[float],
    memory_mb: int,
    cold_starts: int,
    init_s: float,
    prices: Prices = PRICES,
) -> Cost:
    """One build: its state transitions, one request per invocation, each invocation's duration
    (billed per ms) at ``memory_mb`` on Arm, plus ``cold_starts`` INIT phases of ``init_s``."""
    gb = memory_mb / 1024
    invoke_gb_s = sum(billed_seconds(d, prices) for d in durations_s) * gb
    init_gb_s = cold_starts * billed_seconds(init_s, prices) * gb if cold_starts else 0.0
    gb_s = invoke_gb_s + init_gb_s
    return Cost(
        transitions_usd=transitions * prices.per_transition,
        requests_usd=len(durations_s) * prices.per_request,
        duration_usd=gb_s * prices.per_gb_second_arm,
        billed_gb_seconds=gb_s,
        init_gb_seconds=init_gb_s,
    )
