"""Lambda durations on the emulated clock (envbuild_emulator/durations.py)."""

from __future__ import annotations

import threading

import pytest

from envbuild_emulator import durations as model
from envbuild_emulator.calls import calling_as
from envbuild_emulator.clock import Clock
from envbuild_emulator.durations import LambdaDurations

HANDLER = "envbuild_lambda.handlers.check_services.handler"


def test_every_handler_has_an_init_figure() -> None:
    from pathlib import Path

    handlers = Path(__file__).resolve().parents[2] / "functions" / "envbuild_lambda" / "handlers"
    modules = {p.stem for p in handlers.glob("*.py")} - {"__init__", "inputs"}
    assert set(model.INIT_SECONDS) == modules
    assert all(0 < s < 2 for s in model.INIT_SECONDS.values())


def test_a_cold_start_adds_init_then_the_environment_is_reused() -> None:
    clock = Clock(0.0)
    durations = LambdaDurations(clock)
    init = model.INIT_SECONDS["check_services"]

    with clock.invocation(), durations.invocation("CheckServicesFunction", HANDLER):
        assert clock.now() == pytest.approx(init)
        assert durations.last_init_seconds() == init
    with clock.invocation(), durations.invocation("CheckServicesFunction", HANDLER):
        assert durations.last_init_seconds() == 0.0
    assert clock.now() == pytest.approx(init)  # the warm one took no time of its own
    assert durations.cold_starts == {"CheckServicesFunction": 1}


def test_a_second_concurrent_invocation_starts_its_own_environment() -> None:
    clock = Clock(0.0)
    durations = LambdaDurations(clock)
    with durations.invocation("F", HANDLER), durations.invocation("F", HANDLER):
        pass
    with durations.invocation("F", HANDLER):  # two idle environments now: warm
        pass
    assert durations.cold_starts == {"F": 2}


def test_each_call_is_a_round_trip_and_a_pool_threads_calls_overlap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVBUILD_MAX_WORKERS", "4")
    clock = Clock(0.0)
    durations = LambdaDurations(clock, init_seconds={}, default_init_seconds=0.0)
    durations.charge_call()  # outside an invocation (the test's own set-up calls): free
    assert clock.now() == 0.0
    import contextvars

    def pool_calls(count: int) -> None:
        context = contextvars.copy_context()

        def work() -> None:
            for _ in range(count):
                durations.charge_call()

        worker = threading.Thread(target=context.run, args=(work,))
        worker.start()
        worker.join()

    with clock.invocation():
        with durations.invocation("F", HANDLER), calling_as("F"):
            durations.charge_call()  # the handler's own thread: at once
            assert clock.now() == pytest.approx(model.API_CALL_SECONDS)
            pool_calls(8)  # 8 calls over 4 workers: the time of 2, due by the end
            assert clock.now() == pytest.approx(model.API_CALL_SECONDS)
        assert clock.now() == pytest.approx(model.API_CALL_SECONDS * 3)
    assert durations.api_calls == 9


def test_a_pool_s_calls_overlap_the_invocation_s_own_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVBUILD_MAX_WORKERS", "4")
    clock = Clock(0.0)
    durations = LambdaDurations(clock, init_seconds={}, default_init_seconds=0.0)
    import contextvars

    with clock.invocation():
        with durations.invocation("F", HANDLER), calling_as("F"):
            context = contextvars.copy_context()
            worker = threading.Thread(
                target=context.run, args=(lambda: [durations.charge_call() for _ in range(4)],)
            )
            worker.start()
            worker.join()
            clock.sleep(1.0)  # e.g. pacing: longer than the pool's 0.03 s of calls
        assert clock.now() == pytest.approx(1.0)
