"""One time scale for every modelled latency and every emulated wait.

``Clock(scale)`` counts *emulated* seconds since it was made.  ``scale`` is the number of real
seconds one emulated second takes: ``0`` (tests) means waits never sleep and only ``sleep`` /
``advance`` move time; ``0.01`` makes a one-minute AWS operation take 0.6 real seconds.

At scale 0 the state machine's threads keep their own time (``timeline()``): each execution,
Parallel branch, Map iteration and Lambda invocation starts at its parent's time, its Wait states,
retry back-off and pacing move only its own time, and when it ends its parent (and the clock as
seen from outside) reads at least the time it reached. Parallel branches therefore overlap, as on
AWS, instead of adding up, whatever order the threads happen to run in.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["Clock"]


class _Timeline:
    """The emulated time of one execution, branch, iteration or invocation (shared by the threads
    a handler fans out to, and by the thread that evaluates one of its states).

    ``own`` is the time of the timeline's own work; ``reached`` the furthest time any timeline
    started from it (a Parallel branch, a Map iteration) has reached so far. The timeline absorbs
    ``reached`` into ``own`` when it next does something itself (a Wait, an invocation): a
    Parallel state's next state starts when its last branch ended, while a branch starting beside
    a sibling that already moved on still starts from the Parallel's own time."""

    def __init__(self, start: float, parent: _Timeline | None) -> None:
        self.lock = threading.Lock()
        self.own = start
        self.reached = start
        self.parent = parent

    def now(self) -> float:
        with self.lock:
            return max(self.own, self.reached)

    def absorb(self) -> float:
        with self.lock:
            self.own = max(self.own, self.reached)
            return self.own


class Clock:
    """Emulated time shared by the AWS models and by everything that waits on them."""

    def __init__(self, scale: float = 0.0) -> None:
        if scale < 0:
            raise ValueError(f"Clock scale must be >= 0, got {scale!r}")
        self._scale = float(scale)
        self._lock = threading.Lock()
        self._virtual = 0.0
        self._real_start = time.monotonic()
        self._timeline: contextvars.ContextVar[_Timeline | None] = contextvars.ContextVar(
            f"envbuild-clock-{id(self)}", default=None
        )

    @property
    def scale(self) -> float:
        """Real seconds per emulated second (0: time moves only through sleep/advance)."""
        return self._scale

    def now(self) -> float:
        """Emulated seconds since the clock was made (on a timeline: its own time)."""
        timeline = self._timeline.get()
        if timeline is not None:
            return timeline.now()
        with self._lock:
            return self._now_locked()

    @contextlib.contextmanager
    def invocation(self) -> Iterator[None]:
        """Run a Lambda invocation on its own timeline: it starts when its state does, and the
        state goes on when it ends (scale 0 only; at any other scale time is real and shared)."""
        if self._scale > 0:
            yield
            return
        parent = self._timeline.get()
        start = parent.absorb() if parent is not None else self.now()
        timeline = _Timeline(start, parent)
        token = self._timeline.set(timeline)
        try:
            yield
        finally:
            self._timeline.reset(token)
            end = timeline.now()
            if parent is not None:
                with parent.lock:
                    parent.own = max(parent.own, end)
            self._reached(end, parent)

    def branch(self) -> Callable[[Callable[[], None]], None]:
        """For a thread about to be started (a Parallel branch, a Map iteration, an execution):
        returns ``run(body)``, which runs ``body`` on a new timeline that starts at the starting
        thread's own time *now*, and makes its progress known to the starter as it goes."""
        parent = self._timeline.get()
        if parent is None:
            start = self.now()
        else:
            with parent.lock:
                start = parent.own

        def run(body: Callable[[], None]) -> None:
            if self._scale > 0:
                body()
                return
            token = self._timeline.set(_Timeline(start, parent))
            try:
                body()
            finally:
                self._timeline.reset(token)

        return run

    def on_timeline(self) -> bool:
        """Whether the calling thread runs on a timeline (an execution's, a branch's, ...)."""
        return self._timeline.get() is not None

    def _reached(self, moment: float, timeline: _Timeline | None) -> None:
        """Every timeline from ``timeline`` up, and the clock seen from outside, have reached
        ``moment``."""
        while timeline is not None:
            with timeline.lock:
                timeline.reached = max(timeline.reached, moment)
            timeline = timeline.parent
        with self._lock:
            self._virtual = max(self._virtual, moment)

    def sleep_until(self, deadline: float) -> None:
        """Wait until the clock reads ``deadline`` (at once if it already does)."""
        self.sleep(max(0.0, deadline - self.now()))

    def _now_locked(self) -> float:
        if self._scale > 0:
            real = (time.monotonic() - self._real_start) / self._scale
            return max(self._virtual, real)
        return self._virtual

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` emulated seconds.

        Really sleeps ``seconds * scale``; afterwards the clock reads at least the time the sleep
        started plus ``seconds``, so concurrent sleeps of 10 s started at t=0 all end at t=10.
        """
        if seconds < 0:
            raise ValueError(f"cannot sleep a negative time: {seconds!r}")
        timeline = self._timeline.get()
        if timeline is not None:
            t0 = timeline.absorb()
            with timeline.lock:
                timeline.own = max(timeline.own, t0 + seconds)
            self._reached(t0 + seconds, timeline)
            return
        t0 = self.now()
        if self._scale > 0 and seconds > 0:
            time.sleep(seconds * self._scale)
        with self._lock:
            self._virtual = max(self._virtual, t0 + seconds)

    def advance(self, seconds: float) -> float:
        """Move emulated time forward by ``seconds`` at once (tests); returns the new now()."""
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative time: {seconds!r}")
        with self._lock:
            self._virtual = self._now_locked() + seconds
            return self._virtual

    def __repr__(self) -> str:
        return f"Clock(scale={self._scale!r}, now={self.now():.3f})"
