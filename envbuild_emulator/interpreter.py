"""Patches of moto's ASL interpreter: Lambda Tasks run the real handlers in-process; Wait states and
retry back-off follow the emulator's Clock.

Patch points (moto 5.2.5, see shared notes): ``INTERPRETER_PATCH_POINTS`` in moto_internals, each
replaced through ``Patcher``, which fails loudly if moto moved it.
"""

from __future__ import annotations

import contextvars
import datetime
import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from envbuild_emulator.calls import calling_as
from envbuild_emulator.clock import Clock
from envbuild_emulator.moto_internals import INTERPRETER_PATCH_POINTS, Patcher
from envbuild_emulator.template import Function

LAMBDA_EVAL_UTILS, WAIT_FUNCTION, RETRIER_DECL = (
    ref.module for ref in INTERPRETER_PATCH_POINTS[:3]
)
SFN_SERVICE = INTERPRETER_PATCH_POINTS[3].module
TIMEOUTS = "moto.stepfunctions.parser.asl.component.common.timeouts.timeout"
BOTOCORE_ENDPOINT = "botocore.endpoint"
#: The interpreter modules that start a thread per execution, Parallel branch and Map iteration.
THREAD_STARTERS = tuple(ref.module for ref in INTERPRETER_PATCH_POINTS if ref.attr == "threading")
PROGRAM = "moto.stepfunctions.parser.asl.component.program.program"
#: Evaluates each Task state on a helper thread and waits for it.
EXECUTE_STATE = "moto.stepfunctions.parser.asl.component.state.exec.execute_state"
#: Stamps every history event (moto: the wall clock).
EVENT_MANAGER = "moto.stepfunctions.parser.asl.eval.event.event_manager"
#: Parses a definition at CreateStateMachine (validation) and again at every execution start.
ASL_PARSER = "moto.stepfunctions.parser.asl.parse.asl_parser"
PREPROCESSOR = "moto.stepfunctions.parser.asl.parse.preprocessor"

#: definition -> its ANTLR parse tree. Parsing is the slow half of a parse (~0.5 s for the build
#: machine, at each CreateStateMachine and each StartExecution); the tree is only read afterwards,
#: so it is kept for the life of the process, across emulators. The program (evaluation
#: components, which keep per-execution state) is still made fresh from it for every parse.
_PARSE_TREES: dict[str, Any] = {}
_PARSE_TREES_LOCK = threading.Lock()
_PARSE_TREES_LIMIT = 64


def _cached_parse(original: Any) -> Any:
    preprocessor = importlib.import_module(PREPROCESSOR).Preprocessor

    def parse(definition: str) -> tuple[Any, Any]:
        with _PARSE_TREES_LOCK:
            tree = _PARSE_TREES.get(definition)
        if tree is None:
            program, tree = original(definition)  # a syntax error raises: nothing is kept
            with _PARSE_TREES_LOCK:
                if len(_PARSE_TREES) >= _PARSE_TREES_LIMIT:
                    _PARSE_TREES.clear()
                _PARSE_TREES[definition] = tree
            return program, tree
        return preprocessor().visit(tree), tree

    return staticmethod(parse)


#: Validates a definition at CreateStateMachine / UpdateStateMachine by parsing it whole.
SFN_PARSER_MODELS = "moto.stepfunctions.parser.models"


def _cached_validation(original: Any) -> Any:
    """A definition whose parse tree is kept was parsed and preprocessed without error: it is
    valid, and validating it again (~0.2 s for the build machine, at each of the two
    CreateStateMachine calls of every emulator start) is skipped."""
    validate = original.__func__ if isinstance(original, staticmethod) else original

    def validate_definition(definition: str) -> None:
        with _PARSE_TREES_LOCK:
            if definition in _PARSE_TREES:
                return
        validate(definition=definition)

    return staticmethod(validate_definition)


class _TimelineThreads:
    """Stands in for the ``threading`` module (or its ``Thread``) of the interpreter modules that
    start threads: a Thread runs its target in a copy of the starting thread's context, on a new
    timeline of the clock (``branch``) or on the starter's own (a state evaluated on a helper
    thread while the starter waits for it)."""

    def __init__(self, clock: Clock, *, branch: bool, root_only: bool = False) -> None:
        self._clock = clock
        self._branch = branch
        #: only a thread started outside any timeline gets one (an execution's program);
        #: a program run by a branch or an iteration worker, which waits for it, shares theirs
        self._root_only = root_only

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)

    def Thread(self, *args: Any, **kwargs: Any) -> threading.Thread:
        target = kwargs.pop("target")
        target_args = kwargs.pop("args", ())
        target_kwargs = kwargs.pop("kwargs", None) or {}
        context = contextvars.copy_context()
        new_timeline = self._branch and not (self._root_only and self._clock.on_timeline())
        on_timeline = self._clock.branch() if new_timeline else (lambda body: body())

        def run() -> None:
            context.run(on_timeline, lambda: target(*target_args, **target_kwargs))

        return threading.Thread(*args, target=run, **kwargs)


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "emulated"

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Hold:
    """A gate for one function's invocations (LambdaDispatcher.hold)."""

    limit = 60.0

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._open = threading.Event()

    def wait(self) -> None:
        self.entered.set()
        self._open.wait(self.limit)

    def release(self) -> None:
        self._open.set()


class LambdaDispatcher:
    """Dispatches a Lambda ARN to the handler its template resource names, in this process."""

    def __init__(self) -> None:
        self.functions: dict[str, Function] = {}
        self.invocations: Counter[str] = Counter()
        self._lock = threading.Lock()
        #: logical id -> [error type, remaining, after the handler]: the next invocations fail as
        #: Lambda reports it (e.g. "RuntimeError" for a crash, "Sandbox.Timedout" for a function
        #: timeout), before the handler runs or after it made its calls.
        self._faults: dict[str, list[Any]] = {}
        #: logical id -> the gate its invocations wait at (hold): a step that is "in flight".
        self._holds: dict[str, Hold] = {}
        #: How long each invocation takes on the emulated clock (envbuild_emulator.durations;
        #: the Emulator installs it): INIT of a cold start, a round trip per AWS call.
        self.durations: Any = None

    def hold(self, logical_id: str) -> Hold:
        """Invocations of the function wait (wall clock, at most ``Hold.limit`` s) until
        ``release()``: an execution stays RUNNING in that step, e.g. to Stop it mid-way or to
        start another execution while it holds the environment's lock."""
        gate = Hold()
        with self._lock:
            self._holds[logical_id] = gate
        return gate

    def fail_next(
        self,
        logical_id: str,
        error_type: str = "RuntimeError",
        times: int = 1,
        *,
        after_calls: bool = False,
    ) -> None:
        """The next ``times`` invocations of the function fail with ``error_type``. With
        ``after_calls`` the handler runs first (its AWS calls take effect) and the invocation
        fails anyway, as a function that crashes or times out after its last call: the caller
        never sees what it returned."""
        with self._lock:
            self._faults[logical_id] = [error_type, times, after_calls]

    def _fault(self, logical_id: str) -> tuple[str, bool] | None:
        with self._lock:
            fault = self._faults.get(logical_id)
            if not fault or fault[1] <= 0:
                return None
            fault[1] -= 1
            return str(fault[0]), bool(fault[2])

    def register(self, function: Function) -> None:
        code = str(function.code_uri)
        if code not in sys.path:
            sys.path.insert(0, code)
        for key, value in function.environment.items():
            current = os.environ.get(key)
            if current is not None and current != value and key in self._environment_keys():
                raise ValueError(
                    f"{function.logical_id}: environment {key}={value!r} differs from another function's"
                )
            os.environ[key] = value
        self.functions[function.arn] = function
        self.functions[function.name] = function

    def _environment_keys(self) -> set[str]:
        return {key for function in self.functions.values() for key in function.environment}

    def resolve_handler(self, function: Function) -> Any:
        module_name, _, attribute = function.handler.rpartition(".")
        module = importlib.import_module(module_name)
        return getattr(module, attribute)

    def invoke(self, function_name: str, payload: Any) -> dict[str, Any]:
        function = self.functions.get(function_name)
        if function is None:
            return {
                "StatusCode": 404,
                "FunctionError": "Unhandled",
                "Payload": {
                    "errorType": "ResourceNotFoundException",
                    "errorMessage": f"Function not found: {function_name}",
                },
            }
        with self._lock:
            self.invocations[function.logical_id] += 1
        if self.durations is None:
            return self._invoke(function, payload)
        with self.durations.invocation(function.logical_id, function.handler):
            return self._invoke(function, payload)

    def _invoke(self, function: Function, payload: Any) -> dict[str, Any]:
        handler = self.resolve_handler(function)
        context = LambdaContext(function.name, function.arn, function.memory, function.timeout)
        with self._lock:
            gate = self._holds.get(function.logical_id)
        if gate is not None:
            gate.wait()
        fault = self._fault(function.logical_id)
        injected: dict[str, Any] | None = None
        if fault is not None:
            error_type, after_calls = fault
            message = (
                f"Task timed out after {function.timeout}.00 seconds"
                if error_type == "Sandbox.Timedout"
                else f"injected crash of {function.logical_id}"
            )
            injected = {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "ExecutedVersion": "$LATEST",
                "Payload": {"errorType": error_type, "errorMessage": message},
            }
            if not after_calls:
                return injected
        event = json.loads(payload) if isinstance(payload, str | bytes) else (payload or {})
        try:
            with calling_as(function.logical_id):
                result = handler(event, context)
            if injected is not None:
                return injected
        except Exception as error:
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "ExecutedVersion": "$LATEST",
                "Payload": {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_exception(error)[-3:],
                },
            }
        # Round-trip through JSON as Lambda does (a non-serialisable result is an error there too).
        return {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "Payload": json.loads(json.dumps(result)),
        }


class InterpreterPatches:
    """Installs the dispatcher and the clock into moto's interpreter; ``uninstall`` restores moto."""

    def __init__(self, dispatcher: LambdaDispatcher, clock: Clock) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self._patcher = Patcher()
        self._pacing: tuple[Any, Any] | None = None

    def install(self) -> InterpreterPatches:
        dispatcher, clock = self.dispatcher, self.clock
        use_clock_for_pacing = self.use_clock_for_pacing

        def invoke_lambda(
            parameters: dict[str, Any], region: str, state_credentials: Any
        ) -> dict[str, Any]:
            use_clock_for_pacing()
            with clock.invocation():
                return dispatcher.invoke(str(parameters["FunctionName"]), parameters.get("Payload"))

        def wait_interval(_self: Any, env: Any, wait_seconds: int) -> None:
            clock.wait_state(wait_seconds)

        class _RetryTime:
            """Stands in for the ``time`` module inside retrier_decl and botocore.endpoint (which
            only call sleep): Step Functions' Retry back-off and the SDK's own retry back-off
            wait on the emulated clock (inside a Lambda invocation, on its timeline)."""

            @staticmethod
            def sleep(seconds: float) -> None:
                clock.sleep(seconds)

        # moto's port of the Step Functions service integration (states:startExecution[.sync]) has
        # no parameter/response normalisation (LocalStack's base class has it): it passes the
        # ASL's PascalCase names to boto3 and reads boto3's camelCase answers with PascalCase
        # keys. Step Functions' own contract (the service integration docs) is PascalCase on the
        # ASL side, so the emulator translates at that boundary.
        def to_boto(_original: Any) -> Any:
            def normalise_parameters(
                _self: Any,
                parameters: dict[str, Any],
                boto_service_name: Any = None,
                service_action_name: Any = None,
            ) -> None:
                document = parameters.get("Input")
                if (
                    service_action_name is None
                    and document is not None
                    and not isinstance(document, str)
                ):
                    parameters["Input"] = json.dumps(document, separators=(",", ":"))
                for key in list(parameters):
                    parameters[key[0].lower() + key[1:]] = parameters.pop(key)

            return normalise_parameters

        def to_asl(_original: Any) -> Any:
            def normalise_response(
                _self: Any,
                response: Any,
                boto_service_name: Any = None,
                service_action_name: Any = None,
            ) -> None:
                if isinstance(response, dict):
                    for key in list(response):
                        response[key[0].upper() + key[1:]] = response.pop(key)

            return normalise_response

        # moto's Task state pops the TimeoutSeconds it just evaluated, but evaluation is skipped
        # once the execution is stopping (a sibling Parallel branch failed): the pop then takes
        # the Task's payload, the history event gets it as timeoutInSeconds and
        # GetExecutionHistory fails to serialise. A literal timeout is always pushed.
        def literal_timeout(_original: Any) -> Any:
            def evaluate(timeout: Any, env: Any) -> None:
                timeout._eval_body(env)

            return evaluate

        self._patcher.replace(TIMEOUTS, "TimeoutSeconds.eval", literal_timeout)
        self._patcher.replace(ASL_PARSER, "AmazonStateLanguageParser.parse", _cached_parse)
        self._patcher.replace(
            SFN_PARSER_MODELS, "StepFunctionsParserBackend._validate_definition", _cached_validation
        )
        if clock.scale == 0:
            # At scale 0 a history event is stamped with the emulated time of the execution,
            # branch or invocation that adds it (its timeline): the history then reads as AWS's
            # would, e.g. Check Namespace Operation 60 s after the build started, however fast
            # the handlers ran here. (At any other scale emulated time is real time scaled.)
            epoch = datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(seconds=clock.now())

            def emulated_timestamp(_original: Any) -> Any:
                def stamp() -> datetime.datetime:
                    return epoch + datetime.timedelta(seconds=clock.now())

                return staticmethod(stamp)

            self._patcher.replace(
                EVENT_MANAGER, "EventManager._get_current_timestamp", emulated_timestamp
            )
        self._patcher.replace(SFN_SERVICE, "StateTaskServiceSfn._normalise_parameters", to_boto)
        self._patcher.replace(SFN_SERVICE, "StateTaskServiceSfn._normalise_response", to_asl)
        self._patcher.replace(LAMBDA_EVAL_UTILS, "_invoke_lambda_function", lambda _: invoke_lambda)
        self._patcher.replace(WAIT_FUNCTION, "WaitFunction._wait_interval", lambda _: wait_interval)
        self._patcher.replace(RETRIER_DECL, "time", lambda _: _RetryTime)
        self._patcher.replace(BOTOCORE_ENDPOINT, "time", lambda _: _RetryTime)
        # Each execution, Parallel branch and Map iteration thread runs on its own timeline
        # (envbuild_emulator.clock): the threads moto starts inherit the starter's context.
        branches = _TimelineThreads(clock, branch=True)
        programs = _TimelineThreads(clock, branch=True, root_only=True)
        for module in THREAD_STARTERS:
            shim = programs if module == PROGRAM else branches
            self._patcher.replace(module, "threading", lambda _, shim=shim: shim)
        same = _TimelineThreads(clock, branch=False)
        self._patcher.replace(EXECUTE_STATE, "Thread", lambda _: same.Thread)
        return self

    def use_clock_for_pacing(self) -> None:
        """The handlers' client-side pacing (envbuild_lambda.pacing, our own module) waits on the
        emulator's clock. Done at the first invocation: the functions' code is importable once
        the dispatcher has registered them (their CodeUri on sys.path)."""
        if self._pacing is not None:
            return
        from envbuild_lambda import pacing

        self._pacing = (pacing, pacing.TIMER)
        pacing.TIMER = pacing.Timer(self.clock.now, self.clock.sleep_until)
        # The process-wide read limiters keep the time of their last call: this emulator's clock
        # starts again from 0, a new account whose buckets are full.
        pacing.reset_read_limiters()

    def uninstall(self) -> None:
        if self._pacing is not None:
            module, saved = self._pacing
            module.TIMER = saved
            module.reset_read_limiters()
            self._pacing = None
        self._patcher.restore()
