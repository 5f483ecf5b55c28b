"""Client-side pacing of the AWS calls that have a low account-wide rate quota.

ECS throttles per account and Region with token buckets (sustained rate = refill per second,
burst = bucket size): RegisterTaskDefinition about 1 per second sustained, CreateService and
UpdateService about 5 per second (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html).
A batch step that fans out over N services paces those calls with a :class:`RateLimiter` instead
of bursting into ThrottlingException and retrying.

Time comes from the module's :data:`TIMER` (real time by default); the local emulator installs its
own clock there so that pacing advances emulated time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envbuild_lambda.errors import AwsThrottled

#: Attempts of one paced call that AWS throttles anyway (the bucket is per account: another
#: caller, or this build's previous invocation, may have emptied it).
THROTTLED_ATTEMPTS = 6
MAX_PAUSE_SECONDS = 20.0


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


@dataclass(frozen=True)
class Timer:
    """Where pacing reads the time and how it waits until a moment of that time."""

    now: Callable[[], float]
    sleep_until: Callable[[float], None]


REAL_TIME = Timer(time.monotonic, _sleep_until)
#: The timer every RateLimiter uses (replaced by the local emulator while it runs).
TIMER = REAL_TIME


class RateLimiter:
    """A token bucket shared by the threads of one invocation: ``acquire()`` returns when a call
    may go out, at most ``burst`` at once and ``rate_per_second`` sustained."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int = 1,
        *,
        start_full: bool = False,
        from_call_end: bool = False,
    ) -> None:
        """``start_full=False`` (default): the first call waits one token interval, because the
        account's bucket may just have been emptied by another caller, e.g. this build's
        previous batch. ``from_call_end``: the next token is counted from the moment a call
        *returned*, not from when its token was taken, so that calls arrive at AWS at least
        one interval apart however long each took to get there (a call that another thread of
        the invocation delayed would otherwise arrive less than an interval before the next
        one: at burst 1, throttled)."""
        if rate_per_second <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate_per_second}, {burst}")
        self.rate = float(rate_per_second)
        self.burst = burst
        self._lock = threading.Lock()
        #: One paced call at a time: calls leave in the order their tokens were reserved (a
        #: call the thread pool delayed after a later reservation could otherwise land in an
        #: emptied bucket).
        self._serial = threading.Lock()
        self._tokens = float(burst) if start_full else 0.0
        self._stamp: float | None = None
        self._from_call_end = from_call_end

    def acquire(self) -> float:
        """Take one token, waiting for it if needed; returns the seconds waited."""
        timer = TIMER
        with self._lock:
            now = timer.now()
            # Never refilled backwards: a limiter shared by invocations (the read limiters) may
            # see an earlier time after a later one (the emulator runs each on its own timeline).
            if self._stamp is not None and now > self._stamp:
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now if self._stamp is None else max(self._stamp, now)
            self._tokens -= 1.0  # a negative balance is a queue of reserved future tokens
            delay = -self._tokens / self.rate if self._tokens < 0 else 0.0
            start = self._stamp
        if delay > 0:
            timer.sleep_until(start + delay)
        return delay

    def call[R](self, action: Callable[[], R]) -> R:
        """``action()`` once a token is free. If AWS still throttles it (AwsThrottled), wait a
        doubling pause on the same timer and try again; the last AwsThrottled is raised (the
        state machine's Retry then runs the step again). Only for calls that AWS did not apply
        when it throttled them. Paced calls go out one at a time."""
        with self._serial:
            try:
                return self._call(action)
            finally:
                if self._from_call_end:
                    self._restart_at(TIMER.now())

    def _restart_at(self, now: float) -> None:
        """The bucket as if its last token had been taken at ``now``."""
        with self._lock:
            if self._stamp is not None and now > self._stamp:
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
            self._tokens = min(self._tokens, 0.0)
            self._stamp = now if self._stamp is None else self._stamp

    def _call[R](self, action: Callable[[], R]) -> R:
        for attempt in range(THROTTLED_ATTEMPTS):
            self.acquire()
            try:
                return action()
            except AwsThrottled:
                if attempt == THROTTLED_ATTEMPTS - 1:
                    raise
                # The quota is not what this limiter assumed: back off 1, 2, 4 ... s.
                timer = TIMER
                pause = min(MAX_PAUSE_SECONDS, float(2**attempt))
                timer.sleep_until(timer.now() + pause)
        raise AssertionError("unreachable")  # pragma: no cover


#: Account-wide read quotas of the calls a build polls in bulk (service, operation) -> sustained
#: rate per second (envbuild_emulator/throttling.py says where each figure comes from; Cloud Map
#: documents DiscoverInstances only, the others are a conservative 20/s). Every client paces
#: them (``pace_reads``), with a bucket of one second of the rate, full at first: a small build
#: never waits, a large one polls at the sustained rate instead of into RequestLimitExceeded.
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
_read_limiters: dict[tuple[str, str], RateLimiter] = {}
_read_lock = threading.Lock()


def read_limiter(service: str, operation: str) -> RateLimiter | None:
    """The process's limiter of one read (shared by every client and thread), or None."""
    rate = READ_RATES.get((service, operation))
    if rate is None:
        return None
    with _read_lock:
        limiter = _read_limiters.get((service, operation))
        if limiter is None:
            limiter = _read_limiters[(service, operation)] = RateLimiter(
                rate, burst=max(1, int(rate)), start_full=True
            )
        return limiter


def reset_read_limiters() -> None:
    """Forget every read limiter (the local emulator, whose clock starts again at each start)."""
    with _read_lock:
        _read_limiters.clear()


def pace_reads(client: Any, service: str) -> None:
    """Take a token of the read's limiter before each paced read of ``client`` (a botocore
    ``before-call`` hook: every call site is paced, retries by the SDK included). A read AWS
    throttles anyway is retried by the SDK (standard mode: RequestLimitExceeded and
    ThrottlingException are throttling errors, with back-off)."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:  # not a botocore client (a test's fake)
        return
    for paced_service, operation in READ_RATES:
        if paced_service != service:
            continue

        def take(operation: str = operation, **_kwargs: Any) -> None:
            limiter = read_limiter(service, operation)
            if limiter is not None:
                limiter.acquire()

        events.register(f"before-call.{service}.{operation}", take)


def paced[R](limiter: RateLimiter | None, action: Callable[[], R]) -> R:
    """``limiter.call(action)``, or ``action()`` when the caller paces nothing."""
    return limiter.call(action) if limiter is not None else action()
