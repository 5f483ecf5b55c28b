"""The one way the steps fan out over services: a bounded thread pool, results in input order."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


def pmap[T, R](function: Callable[[T], R], items: Sequence[T], max_workers: int) -> list[R]:
    """``[function(item) for item in items]``, at most ``max_workers`` at a time.

    Each item runs in a copy of the caller's context (``contextvars``), as it would inline: context
    set for the invocation (powertools' thread-safe log keys, the emulator's call attribution)
    reaches the workers. One copy per item: a context cannot be entered by two threads at once.
    """
    if len(items) <= 1:
        return [function(item) for item in items]

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        # copy_context() runs here, in the caller's thread, once per item.
        futures = [pool.submit(contextvars.copy_context().run, function, item) for item in items]
        return [future.result() for future in futures]
