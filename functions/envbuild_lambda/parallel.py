"""The one way the steps fan out over services: a bounded thread pool, results in input order."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


def pmap[T, R](function: Callable[[T], R], items: Sequence[T], max_workers: int) -> list[R]:
    """``[function(item) for item in items]``, at most ``max_workers`` at a time."""
    if len(items) <= 1:
        return [function(item) for item in items]
    # Each item runs in a copy of the caller's context (contextvars: Powertools' and the
    # emulator's per-invocation state follow the work onto the pool's threads).
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = [pool.submit(context.copy().run, function, item) for item in items]
        return [future.result() for future in futures]
