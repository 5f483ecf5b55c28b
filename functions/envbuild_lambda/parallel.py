"""The one way the steps fan out over services: a bounded thread pool, results in input order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


def pmap[T, R](function: Callable[[T], R], items: Sequence[T], max_workers: int) -> list[R]:
    """``[function(item) for item in items]``, at most ``max_workers`` at a time."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(function, items))
