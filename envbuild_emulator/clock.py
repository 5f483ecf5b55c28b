"""One time scale for every modelled latency and every emulated wait.

``Clock(scale)`` counts *emulated* seconds since it was made.  ``scale`` is the number of real
seconds one emulated second takes: ``0`` (tests) means waits never sleep and only ``sleep`` /
``advance`` move time; ``0.01`` makes a one-minute AWS operation take 0.6 real seconds.

At scale 0 each Lambda invocation also runs on its own timeline (``invocation()``): a handler
that paces its calls (``envbuild_lambda.pacing``) moves only its own time forward, not the time
of a Parallel branch waiting beside it; when the invocation ends the clock reads at least the
time it reached.  Without this, two branches' waits would add up instead of overlapping.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator

__all__ = ["Clock"]


class _Timeline:
    """The emulated time of one Lambda invocation (shared by the threads it fans out to)."""

    def __init__(self, start: float) -> None:
        self.lock = threading.Lock()
        self.now = start


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
        """Emulated seconds since the clock was made (inside an invocation: its own time)."""
        timeline = self._timeline.get()
        if timeline is not None:
            with timeline.lock:
                return timeline.now
        with self._lock:
            return self._now_locked()

    @contextlib.contextmanager
    def invocation(self) -> Iterator[None]:
        """Run a Lambda invocation on its own timeline (scale 0 only; real time otherwise)."""
        if self._scale > 0 or self._timeline.get() is not None:
            yield
            return
        timeline = _Timeline(self.now())
        token = self._timeline.set(timeline)
        try:
            yield
        finally:
            self._timeline.reset(token)
            with self._lock:
                self._virtual = max(self._virtual, timeline.now)

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
        t0 = self.now()
        timeline = self._timeline.get()
        if timeline is not None:
            with timeline.lock:
                timeline.now = max(timeline.now, t0 + seconds)
            return
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
