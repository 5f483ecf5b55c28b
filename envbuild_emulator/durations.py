"""How long a Lambda invocation takes on the emulated clock (issue 18).

moto answers in-process in microseconds, so without a model every invocation took 0 emulated
seconds, although a build runs about ten cold functions in series on its path to DNS. The model
adds two things to the invocation's own timeline (``envbuild_emulator.clock``):

- **INIT** of a cold start: a function's invocation that finds no idle container of that function
  starts one, as Lambda does ("Lambda creates a new execution environment ... when there is no
  free one", https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html), and
  waits for its INIT phase: the import of the handler module. ``INIT_SECONDS`` is the cold import
  of each handler from the built artifact with the bytecode ``make build`` ships, as the bench
  measures it (``python -m bench.run``, "Cold import of the built artifact": CPU time of a fresh
  ``python -S -B`` import, median of 5 on a 2-CPU x86_64 machine, 2026-12-06), rounded to 10 ms.
  A lower bound: Lambda's runtime start (a few tens of ms) is not in it, and a 256 MB function
  gets a fraction of a vCPU.
- **A round trip per AWS API call** the invocation makes: ``API_CALL_SECONDS`` (30 ms). AWS
  publishes no latency for its control-plane APIs; 30 ms is an assumption for an HTTPS request
  from a Lambda function to a regional endpoint on a connection the SDK keeps open (tens of ms
  is what SDK request metrics commonly show). A call from the handler's own thread takes its
  round trip there and then. Calls from its thread pool (``envbuild_lambda.parallel.pmap``,
  ``ENVBUILD_MAX_WORKERS`` threads) overlap each other and the waits of the invocation (its
  pacing): they need ``API_CALL_SECONDS / workers`` each, the pool's throughput, and the
  invocation lasts at least that work when it ends. (Charging them one by one on the timeline
  the pool threads share would serialise them, and shift each paced call by the others' round
  trips: a jitter AWS's buckets would see as calls closer together than the pacing sent them.)

The quota-aware limit of the benchmark stays AWS's physical floor (no Lambda in it).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from envbuild_emulator.calls import current_function
from envbuild_emulator.clock import Clock
from envbuild_emulator.moto_internals import Patcher

#: Handler module (``envbuild_lambda.handlers.<name>``) -> INIT seconds (module docstring).
INIT_SECONDS: dict[str, float] = {
    "acquire_lock": 0.23,
    "check_dns_probe": 0.24,
    "check_namespace_operation": 0.23,
    "check_services": 0.23,
    "create_namespace": 0.24,
    "create_registries": 0.24,
    "create_services": 0.23,
    "plan_changes": 0.24,
    "preflight": 0.25,
    "register_task_definitions": 0.24,
    "release_lock": 0.23,
    "start_dns_probe": 0.24,
    "teardown_check_operations": 0.24,
    "teardown_check_services": 0.24,
    "teardown_check_tasks": 0.23,
    "teardown_delete_namespace": 0.23,
    "teardown_delete_registries": 0.23,
    "teardown_delete_services": 0.24,
    "teardown_deregister_instances": 0.23,
    "teardown_finish": 0.24,
    "teardown_plan": 0.25,
    "teardown_scale_services": 0.24,
    "validate_spec": 0.22,
    "verify_dns": 0.23,
}
#: A handler not in the table (a template's new function): the slowest measured.
DEFAULT_INIT_SECONDS = max(INIT_SECONDS.values())
API_CALL_SECONDS = 0.03
#: The handlers' thread pool width when the function's environment does not set it (settings.py).
DEFAULT_WORKERS = 4


@dataclass
class _Invocation:
    """One running invocation: its handler's thread, when its code started (after INIT), the
    round trips charged on its thread and the pool's work (seconds)."""

    thread: int
    start: float = 0.0
    own: float = 0.0
    pool: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class LambdaDurations:
    """The model (module docstring), applied to the invocations the dispatcher runs on ``clock``.
    ``cold_starts`` counts the INIT phases per function logical id; ``api_calls`` the round trips
    charged."""

    clock: Clock
    init_seconds: Mapping[str, float] = field(default_factory=lambda: dict(INIT_SECONDS))
    default_init_seconds: float = DEFAULT_INIT_SECONDS
    api_call_seconds: float = API_CALL_SECONDS
    cold_starts: Counter[str] = field(default_factory=Counter)
    api_calls: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        #: function logical id -> [execution environments, busy ones]
        self._environments: dict[str, list[int]] = {}
        self._running: contextvars.ContextVar[_Invocation | None] = contextvars.ContextVar(
            f"envbuild-invocation-{id(self)}", default=None
        )
        self._patcher = Patcher()
        self._local = threading.local()

    def last_init_seconds(self) -> float:
        """The INIT seconds of this thread's last invocation (0 when it was warm)."""
        return float(getattr(self._local, "init", 0.0))

    def init_for(self, handler: str) -> float:
        """INIT seconds of the function whose Handler is ``handler`` (module.attribute)."""
        module = handler.rpartition(".")[0].rpartition(".")[2]
        return float(self.init_seconds.get(module, self.default_init_seconds))

    @contextmanager
    def invocation(self, logical_id: str, handler: str) -> Iterator[None]:
        """One invocation, on the invocation's timeline: INIT first when no environment of the
        function is idle, then the handler (its calls charged by the installed hook)."""
        with self._lock:
            environments = self._environments.setdefault(logical_id, [0, 0])
            cold = environments[1] >= environments[0]
            if cold:
                environments[0] += 1
                self.cold_starts[logical_id] += 1
            environments[1] += 1
        running = _Invocation(threading.get_ident())
        token = self._running.set(running)
        self._local.init = self.init_for(handler) if cold else 0.0
        try:
            if cold:
                self.clock.sleep(self._local.init)
            running.start = self.clock.now()
            yield
            # The pool's calls overlapped the invocation's waits; it lasts at least their work.
            if self.clock.on_timeline():
                short = running.start + running.own + running.pool - self.clock.now()
                if short > 0:
                    self.clock.sleep(short)
        finally:
            self._running.reset(token)
            with self._lock:
                environments[1] -= 1

    def charge_call(self) -> None:
        """One AWS API round trip of the running invocation (none outside one)."""
        running = self._running.get()
        if running is None or current_function() is None or not self.clock.on_timeline():
            return
        with self._lock:
            self.api_calls += 1
        if threading.get_ident() != running.thread:  # a pool thread: the calls overlap
            workers = max(1, int(os.environ.get("ENVBUILD_MAX_WORKERS", DEFAULT_WORKERS)))
            with running.lock:
                running.pool += self.api_call_seconds / workers
            return
        running.own += self.api_call_seconds
        self.clock.sleep(self.api_call_seconds)

    def install(self) -> LambdaDurations:
        charge = self.charge_call

        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            def call_action(response: Any) -> Any:
                charge()
                return original(response)

            return call_action

        self._patcher.replace("moto.core.responses", "BaseResponse.call_action", wrap)
        return self

    def uninstall(self) -> None:
        self._patcher.restore()
