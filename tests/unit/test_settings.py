"""Settings read from the environment and the bounded poll schedule (functions/envbuild_lambda/settings.py)."""

from __future__ import annotations

import dataclasses
import os

import pytest

from envbuild_lambda.settings import PollSchedule, Settings, get_settings


def test_first_wait_then_steady_interval() -> None:
    schedule = PollSchedule(first_seconds=50, interval_seconds=5, max_attempts=20)
    assert [schedule.wait_before(a) for a in range(5)] == [50, 5, 5, 5, 5]
    assert schedule.wait_before(10_000) == 5


def test_a_fine_window_checks_more_often_right_after_the_first_check() -> None:
    schedule = PollSchedule(50, 5, 60, fine_seconds=2, fine_window_seconds=6)
    assert [schedule.wait_before(a) for a in range(6)] == [50, 2, 2, 2, 5, 5]
    assert schedule.budget_seconds() == 50 + 3 * 2 + 5 * 56
    # never coarser than the interval
    assert PollSchedule(5, 1, 5, fine_seconds=2, fine_window_seconds=10).wait_before(1) == 1


def test_budget_seconds_is_the_sum_of_every_wait() -> None:
    assert PollSchedule(50, 5, 60).budget_seconds() == 50 + 5 * 59
    assert PollSchedule(30, 5, 120).budget_seconds() == 30 + 5 * 119
    assert PollSchedule(3, 3, 1).budget_seconds() == 3


def test_from_env_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.namespace_poll == PollSchedule(50, 5, 60, 2, 20)
    assert settings.services_poll == PollSchedule(30, 5, 120, 2, 20)
    assert settings.teardown_poll == PollSchedule(5, 5, 180)
    assert settings.max_workers == 4


def test_from_env_overrides_every_value() -> None:
    settings = Settings.from_env(
        {
            "NAMESPACE_POLL_FIRST_SECONDS": "1",
            "NAMESPACE_POLL_INTERVAL_SECONDS": "2",
            "NAMESPACE_POLL_MAX_ATTEMPTS": "3",
            "SERVICES_POLL_FIRST_SECONDS": "4",
            "SERVICES_POLL_INTERVAL_SECONDS": "5",
            "SERVICES_POLL_MAX_ATTEMPTS": "6",
            "TEARDOWN_POLL_FIRST_SECONDS": "0",
            "TEARDOWN_POLL_INTERVAL_SECONDS": "8",
            "TEARDOWN_POLL_MAX_ATTEMPTS": "9",
            "ENVBUILD_MAX_WORKERS": "7",
        }
    )
    assert settings == Settings(
        PollSchedule(1, 2, 3, 2, 20), PollSchedule(4, 5, 6, 2, 20), PollSchedule(0, 8, 9), 7
    )


def test_an_empty_variable_means_the_default() -> None:
    assert Settings.from_env({"ENVBUILD_MAX_WORKERS": ""}).max_workers == 4


@pytest.mark.parametrize("raw", ["abc", "1.5", "ten"])
def test_a_non_number_raises_naming_the_variable_and_value(raw: str) -> None:
    with pytest.raises(
        ValueError,
        match=f"environment variable SERVICES_POLL_MAX_ATTEMPTS must be a whole number, got '{raw}'",
    ):
        Settings.from_env({"SERVICES_POLL_MAX_ATTEMPTS": raw})


@pytest.mark.parametrize("raw", ["0", "-3"])
def test_a_number_below_one_raises_naming_the_variable(raw: str) -> None:
    with pytest.raises(
        ValueError, match=f"environment variable ENVBUILD_MAX_WORKERS must be >= 1, got {raw}"
    ):
        Settings.from_env({"ENVBUILD_MAX_WORKERS": raw})


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings.from_env({}).max_workers = 9  # type: ignore[misc]


def test_get_settings_reads_the_process_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACE_POLL_MAX_ATTEMPTS", "9")
    first = get_settings()
    assert first.namespace_poll.max_attempts == 9
    monkeypatch.setenv("NAMESPACE_POLL_MAX_ATTEMPTS", "11")
    assert get_settings() is first
    assert os.environ["NAMESPACE_POLL_MAX_ATTEMPTS"] == "11"
