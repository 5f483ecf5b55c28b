"""Clock: the one emulated time scale."""

from __future__ import annotations

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
