"""One time scale for every modelled latency and every emulated wait.

``Clock(scale)`` counts *emulated* seconds since it was made.  ``scale`` is the number of real
seconds one emulated second takes: ``0`` (tests) means waits never sleep and only ``sleep`` /
``advance`` move time; ``0.01`` makes a one-minute AWS operation take 0.6 real seconds.

At scale 0 the state machine's threads keep their own time (``timeline()``): each execution,
Parallel branch, Map iteration and Lambda invocation starts at its parent's time, its Wait states,
retry back-off and pacing move only its own time, and when it ends its parent (and the clock as
seen from outside) reads at least the time it reached. Parallel branches therefore overlap, as on
AWS, instead of adding up, whatever order the threads happen to run in.

Emulated time does not stop when an execution ends: AWS goes on with whatever the execution
started (a Cloud Map operation completes about a minute after CreatePrivateDnsNamespace whether or
not its caller is still there). At scale 0 time then moves only through ``advance`` (tests: "ten
minutes later"); at any other scale it keeps flowing with real time, ``advance`` jumping it ahead.
The models apply what became due at the next request (``World.tick``), or at once through
``Emulator.advance``. docs/aws-fidelity.md, "Time".

A Lambda invocation goes on after the state that started it was stopped (a Parallel state whose
other branch failed): "If any branch fails ... the entire Parallel state is considered to have
failed and all its branches are stopped"
(https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html), but stopping a state
does not stop a synchronous invocation already running: it ends when the handler returns or at the
function's timeout (https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html). At
scale 0 a Wait state takes no real time, so a Wait that ends at emulated time T also waits (in
real time) for the invocations started before T that are still running (``wait_state``): what they
do happened before T on AWS, and the state after the Wait sees it.
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
        #: emulated seconds added to real time by ``advance`` (scale > 0)
        self._offset = 0.0
        #: scale 0: the start time of every Lambda invocation still running (``wait_state``)
        self._running: dict[int, float] = {}
        self._invocation_ended = threading.Condition(self._lock)
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
        with self._lock:
            self._running[id(timeline)] = start
        try:
            yield
        finally:
            self._timeline.reset(token)
            with self._lock:
                self._running.pop(id(timeline), None)
                self._invocation_ended.notify_all()
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
            real = (time.monotonic() - self._real_start) / self._scale + self._offset
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

    def wait_state(self, seconds: float, patience: float = 30.0) -> None:
        """A Wait state of ``seconds``: ``sleep``, then (scale 0) wait in real time, at most
        ``patience`` real seconds, until no Lambda invocation that started before the Wait's end
        is still running (module docstring). At any other scale time is real and shared: the
        sleep itself lets them run."""
        self.sleep(seconds)
        if self._scale > 0:
            return
        end = self.now()
        deadline = time.monotonic() + patience
        with self._invocation_ended:
            while any(start < end for start in self._running.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._invocation_ended.wait(remaining)

    def advance(self, seconds: float) -> float:
        """Move emulated time forward by ``seconds`` at once (tests); returns the new now().

        At scale > 0 time goes on flowing from there (real time plus every advance)."""
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative time: {seconds!r}")
        with self._lock:
            target = self._now_locked() + seconds
            if self._scale > 0:
                self._offset += seconds
            self._virtual = target
            return target

    def __repr__(self) -> str:
        return f"Clock(scale={self._scale!r}, now={self.now():.3f})"
