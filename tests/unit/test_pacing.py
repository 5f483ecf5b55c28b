"""Client-side pacing of rate-limited AWS calls (functions/envbuild_lambda/pacing.py)."""

from __future__ import annotations

import itertools
import threading

import pytest

from envbuild_lambda import pacing
from envbuild_lambda.errors import AwsThrottled
from envbuild_lambda.pacing import RateLimiter, Timer


class FakeTime:
    """A timer whose sleeps move its clock forward at once (and record the moments)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def read(self) -> float:
        with self.lock:
            return self.now

    def sleep_until(self, deadline: float) -> None:
        with self.lock:
            self.now = max(self.now, deadline)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(pacing, "TIMER", Timer(fake.read, fake.sleep_until))
    return fake


def test_one_per_second_spaces_calls_one_second_apart(fake_time: FakeTime) -> None:
    limiter = RateLimiter(1)
    moments = []
    for _ in range(4):
        limiter.acquire()
        moments.append(fake_time.now)
    # the first call waits too: the account's bucket may just have been emptied
    assert moments == [1.0, 2.0, 3.0, 4.0]


def test_a_full_bucket_lets_the_first_call_go_at_once(fake_time: FakeTime) -> None:
    limiter = RateLimiter(1, start_full=True)
    limiter.acquire()
    limiter.acquire()
    assert fake_time.now == 1.0


def test_a_burst_goes_out_at_once_then_the_sustained_rate(fake_time: FakeTime) -> None:
    limiter = RateLimiter(5, burst=5, start_full=True)
    moments = []
    for _ in range(7):
        limiter.acquire()
        moments.append(round(fake_time.now, 6))
    assert moments == [0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.4]


def test_threads_share_the_bucket(fake_time: FakeTime) -> None:
    limiter = RateLimiter(2)
    released: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        limiter.acquire()
        with lock:
            released.append(fake_time.read())

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # six calls at 2/s go out at 0.5, 1.0, ... 3.0 s whatever the threads' order
    assert sorted(released) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def test_a_throttled_call_waits_a_doubling_pause_and_is_tried_again(fake_time: FakeTime) -> None:
    answers: list[str] = []

    def action() -> str:
        answers.append(f"t={fake_time.now:g}")
        if len(answers) < 3:
            raise AwsThrottled("RegisterTaskDefinition web: ThrottlingException: Rate exceeded")
        return "registered"

    assert RateLimiter(1).call(action) == "registered"
    # first token at 1; throttled: pause 1 s -> 2; throttled: pause 2 s -> 4
    assert answers == ["t=1", "t=2", "t=4"]


def test_a_call_throttled_every_time_raises_the_last_error(fake_time: FakeTime) -> None:
    calls = []

    def action() -> None:
        calls.append(fake_time.now)
        raise AwsThrottled(f"throttled #{len(calls)}")

    with pytest.raises(AwsThrottled, match="throttled #6"):
        RateLimiter(1).call(action)
    assert len(calls) == pacing.THROTTLED_ATTEMPTS


def test_other_errors_are_not_retried(fake_time: FakeTime) -> None:
    calls = []

    def action() -> None:
        calls.append(1)
        raise ValueError("bad request")

    with pytest.raises(ValueError, match="bad request"):
        RateLimiter(1).call(action)
    assert calls == [1]


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_rate_or_burst_out_of_range_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be > 0 and burst >= 1"):
        RateLimiter(rate, burst)


def test_real_time_is_the_default() -> None:
    assert pacing.TIMER is pacing.REAL_TIME


def test_paced_without_a_limiter_calls_at_once(fake_time: FakeTime) -> None:
    assert pacing.paced(None, lambda: "done") == "done"
    assert fake_time.now == 0.0


def test_paced_with_a_limiter_waits_for_its_token(fake_time: FakeTime) -> None:
    assert pacing.paced(RateLimiter(2), lambda: fake_time.now) == 0.5


def test_from_call_end_spaces_calls_from_when_each_returned(fake_time: FakeTime) -> None:
    # Each call takes 0.3 s to reach AWS (another thread of the invocation held the time):
    # counted from its token, the next would arrive 0.7 s after it; counted from its end, 1 s.
    arrivals: list[float] = []

    def slow_call() -> None:
        fake_time.sleep_until(fake_time.now + 0.3)
        arrivals.append(fake_time.now)

    limiter = RateLimiter(1, from_call_end=True)
    for _ in range(3):
        limiter.call(slow_call)

    assert arrivals == pytest.approx([1.3, 2.6, 3.9])
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(arrivals))
