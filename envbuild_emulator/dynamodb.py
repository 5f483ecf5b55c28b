"""DynamoDB conditional writes are atomic (DynamoDB developer guide, "Condition expressions").

moto checks a ConditionExpression and then writes, without a lock: two executions' handlers on
two threads could both pass ``attribute_not_exists``. The emulator serialises the writes, as the
one-build-per-environment lock relies on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from envbuild_emulator.moto_internals import Patcher

DYNAMODB_MODELS = "moto.dynamodb.models"
WRITES = ("put_item", "update_item", "delete_item")


class AtomicConditionalWrites:
    def __init__(self) -> None:
        self._patcher = Patcher()
        self._lock = threading.Lock()

    def install(self) -> AtomicConditionalWrites:
        lock = self._lock

        def serialised(original: Callable[..., Any]) -> Callable[..., Any]:
            def write(self: Any, *args: Any, **kwargs: Any) -> Any:
                with lock:
                    return original(self, *args, **kwargs)

            return write

        for name in WRITES:
            self._patcher.replace(DYNAMODB_MODELS, f"DynamoDBBackend.{name}", serialised)
        return self

    def uninstall(self) -> None:
        self._patcher.restore()
