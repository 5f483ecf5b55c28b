"""Shared fixtures: an emulated AWS account (moto, in-process, clock scale 0) with envbuild deployed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def emulator() -> Iterator[Any]:
    from envbuild_emulator.emulator import Emulator

    with Emulator(time_scale=0.0) as emu:
        yield emu


def fill(text: str, variables: dict[str, str]) -> str:
    for key, value in variables.items():
        text = text.replace("${" + key + "}", value)
    return text


@pytest.fixture
def workshop_spec(emulator: Any) -> dict[str, Any]:
    """events/workshop.json with the emulator's prerequisites filled in."""
    return dict(
        json.loads(fill((REPO / "events" / "workshop.json").read_text(), emulator.prerequisites))
    )
