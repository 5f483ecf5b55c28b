"""Timed actions and per-backend model state.

Model state lives *on the moto backend object* it belongs to (one per account and region), so
moto's resets (``mock_aws`` start/stop, ``/moto-api/reset``, ``BaseBackend.reset``) drop it
together with the data it describes.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

__all__ = ["Action", "BackendState", "Timers", "state_of"]

#: A timed action; it receives the emulated time it was due at.
Action = Callable[[float], None]

_SEQUENCE = itertools.count()
_ATTRIBUTE = "_envbuild_model_state"


class Timers:
    """A heap of actions ordered by due time (ties keep scheduling order)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Action]] = []

    def add(self, due: float, action: Action) -> None:
        heapq.heappush(self._heap, (due, next(_SEQUENCE), action))

    def next_due(self) -> tuple[float, int] | None:
        if not self._heap:
            return None
        due, seq, _ = self._heap[0]
        return due, seq

    def pop(self) -> tuple[float, Action]:
        due, _, action = heapq.heappop(self._heap)
        return due, action

    def __len__(self) -> int:
        return len(self._heap)


class BackendState:
    """Base of the state a model keeps on one backend; ``owner`` is the World that made it."""

    def __init__(self, owner: object) -> None:
        self.owner = owner
        self.timers = Timers()


def state_of[S: BackendState](backend: object, owner: object, factory: Callable[[object], S]) -> S:
    """The model state stored on ``backend`` for ``owner``, created on first use."""
    state = vars(backend).get(_ATTRIBUTE)
    if state is None or state.owner is not owner:
        state = factory(owner)
        vars(backend)[_ATTRIBUTE] = state
    return state


def existing_state(backend: object, owner: object) -> BackendState | None:
    """The state on ``backend`` if ``owner`` made one (never creates)."""
    state = vars(backend).get(_ATTRIBUTE)
    if isinstance(state, BackendState) and state.owner is owner:
        return state
    return None
