"""Clock: the one emulated time scale."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from envbuild_emulator.clock import Clock


def test_starts_at_zero_and_only_sleeps_move_time_when_scale_is_zero() -> None:
    clock = Clock()
    assert clock.now() == 0.0
    time.sleep(0.01)
    assert clock.now() == 0.0
    started = time.monotonic()
    clock.sleep(3600)
    assert time.monotonic() - started < 0.5
    assert clock.now() == 3600.0


def test_sequential_sleeps_add_up() -> None:
    clock = Clock()
    clock.sleep(10)
    clock.sleep(5)
    clock.sleep(0)
    assert clock.now() == 15.0


def test_concurrent_sleeps_from_the_same_instant_end_together() -> None:
    # Overlapping sleeps of 10 s all end at t=10 (not 10 * number of sleepers).  Scale 0.05 makes
    # each take 0.5 s of real time, so the eight sleeps really overlap.
    clock = Clock(scale=0.05)
    barrier = threading.Barrier(8)

    def sleeper() -> None:
        barrier.wait()
        clock.sleep(10)

    threads = [threading.Thread(target=sleeper) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 10.0 <= clock.now() < 13.0


def test_advance() -> None:
    clock = Clock()
    assert clock.advance(2.5) == 2.5
    clock.sleep(1)
    assert clock.now() == 3.5


def test_scale_tracks_real_time() -> None:
    clock = Clock(scale=0.001)  # one emulated second = 1 ms
    time.sleep(0.05)
    assert clock.now() >= 50.0
    before = clock.now()
    started = time.monotonic()
    clock.sleep(20)  # 20 ms of real time
    assert time.monotonic() - started >= 0.02
    assert clock.now() >= before + 20


def test_scaled_sleep_never_ends_before_its_emulated_deadline() -> None:
    clock = Clock(scale=0.0001)
    clock.advance(1000)  # virtual time ahead of real time
    clock.sleep(5)
    assert clock.now() >= 1005


@pytest.mark.parametrize("bad", [-1.0])
def test_rejects_negative_values(bad: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        Clock(scale=bad)
    with pytest.raises(ValueError, match="negative"):
        Clock().sleep(bad)
    with pytest.raises(ValueError, match="negative"):
        Clock().advance(bad)


def test_an_invocation_runs_on_its_own_timeline_and_the_clock_reaches_its_end() -> None:
    clock = Clock()
    clock.advance(10)
    with clock.invocation():
        assert clock.now() == 10
        clock.sleep(3)  # e.g. pacing inside a handler
        assert clock.now() == 13
        clock.sleep_until(12)  # already past: no wait
        assert clock.now() == 13
    assert clock.now() == 13


def test_a_branch_waiting_beside_an_invocation_does_not_push_its_time() -> None:
    """Two Parallel branches: one Waits 50 s (global clock), the other runs a handler that paces
    itself for 20 s. They overlap: the clock ends at 50, not 70, and the handler saw 0..20."""
    clock = Clock()
    seen: list[float] = []
    inside = threading.Event()
    waited = threading.Event()

    def handler() -> None:
        with clock.invocation():
            inside.set()
            waited.wait(5)  # the other branch's Wait has moved the global clock meanwhile
            for _ in range(20):
                clock.sleep(1)
                seen.append(clock.now())

    thread = threading.Thread(target=handler)
    thread.start()
    inside.wait(5)
    clock.sleep(50)  # Wait state of the other branch
    waited.set()
    thread.join()
    assert seen[0] == 1
    assert seen[-1] == 20
    assert clock.now() == 50


def test_an_invocation_that_ends_last_moves_the_clock_to_its_end() -> None:
    clock = Clock()
    with clock.invocation():
        clock.sleep(200)
    assert clock.now() == 200


def test_threads_of_one_invocation_share_its_timeline() -> None:
    clock = Clock()
    with clock.invocation():
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(clock.sleep, 7))
        thread.start()
        thread.join()
        assert clock.now() == 7
    assert clock.now() == 7


def test_a_scaled_clock_ignores_invocation_timelines() -> None:
    clock = Clock(scale=0.001)
    with clock.invocation():
        before = clock.now()
        clock.sleep(5)
        assert clock.now() >= before + 5


def test_parallel_branches_start_together_and_the_next_state_starts_after_the_last() -> None:
    """A Parallel state: branch 1 waits 50 s before branch 2 has even started; branch 2 still
    starts at the Parallel's time (0) and paces 20 s; the state after the Parallel starts at 50."""
    clock = Clock()
    seen: dict[str, float] = {}

    def execution() -> None:
        first, second = clock.branch(), clock.branch()  # both made before either runs

        def one() -> None:
            clock.sleep(50)
            seen["one"] = clock.now()

        def two() -> None:
            seen["two started"] = clock.now()
            with clock.invocation():
                clock.sleep(20)
            seen["two"] = clock.now()

        t1 = threading.Thread(target=first, args=(one,))
        t1.start()
        t1.join()  # the worst order: branch 1 is done before branch 2 starts
        t2 = threading.Thread(target=second, args=(two,))
        t2.start()
        t2.join()
        with clock.invocation():  # the next state
            seen["next"] = clock.now()

    root = clock.branch()
    thread = threading.Thread(target=root, args=(execution,))
    thread.start()
    thread.join()
    assert seen == {"one": 50, "two started": 0, "two": 20, "next": 50}
    assert clock.now() == 50


def test_time_goes_on_after_an_advance_at_a_real_scale() -> None:
    """At scale > 0 an advance jumps time ahead and it keeps flowing from there (it does not stand
    still until real time catches up)."""
    clock = Clock(scale=0.001)
    ahead = clock.advance(600)
    time.sleep(0.03)
    assert clock.now() >= ahead + 30


def test_a_wait_state_waits_for_the_invocations_started_before_its_end() -> None:
    """A Parallel branch's Lambda invocation still running when its sibling's Wait (or the state
    after a failed Parallel) ends: at scale 0 the Wait takes no real time, so it waits for the
    invocation, whose calls happened before the Wait's end on AWS."""
    clock = Clock()
    started = threading.Event()
    done: list[float] = []

    def handler() -> None:
        with clock.invocation():
            started.set()
            time.sleep(0.2)  # real time: the handler's AWS calls
            done.append(clock.now())

    thread = clock.branch()
    runner = threading.Thread(target=thread, args=(handler,))
    runner.start()
    started.wait(5)
    clock.branch()(lambda: clock.wait_state(120))
    assert done == [0.0], "the Wait ended before the invocation it must follow"
    runner.join()
    assert clock.now() == 120


def test_a_wait_state_does_not_wait_for_invocations_that_start_after_its_end() -> None:
    clock = Clock()
    clock.advance(100)
    release = threading.Event()

    def later_handler() -> None:
        with clock.invocation():
            release.wait(5)

    runner = threading.Thread(target=later_handler)
    runner.start()
    started = time.monotonic()
    clock.branch()(lambda: clock.wait_state(0))  # ends at 100: the invocation started at 100
    assert time.monotonic() - started < 1
    release.set()
    runner.join()


def test_a_wait_state_gives_up_on_an_invocation_that_never_ends() -> None:
    clock = Clock()
    release = threading.Event()

    def stuck() -> None:
        with clock.invocation():
            release.wait(5)

    runner = threading.Thread(target=stuck)
    runner.start()
    time.sleep(0.05)
    started = time.monotonic()
    clock.branch()(lambda: clock.wait_state(10, patience=0.2))
    assert 0.2 <= time.monotonic() - started < 2
    release.set()
    runner.join()
