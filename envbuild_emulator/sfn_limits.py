"""Step Functions limits that moto 5.2.5's StartExecution does not enforce (its ASL-executing
backend checks neither the name nor the input's size).

AWS Step Functions API Reference, StartExecution
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html):

- ``name``: length 1-80; "A name must not contain: white space; brackets < > { } [ ]; wildcard
  characters ? *; special characters " # % \\ ^ | ~ ` $ & , ; : /; control characters
  (U+0000-001F, U+007F-009F, U+FFFE-FFFF); surrogates (U+D800-DFFF); invalid characters
  (U+10FFFF)" -> ``InvalidName`` ("The provided name is not valid", HTTP 400).
- ``input``: "Length constraints apply to the payload size, and are expressed as bytes in UTF-8
  encoding", at most 262144 (256 KiB, also "Step Functions service quotas": maximum input or
  output size for a task, state, or execution) -> ``InvalidExecutionInput`` (HTTP 400), as for
  input that is not JSON.

Both apply to every StartExecution: the CLI's, EventBridge targets' and the ``.sync:2`` child
executions the build's Roll Back and Prune Removed Services states start.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from envbuild_emulator.moto_internals import Patcher, lookup

SFN_PARSER_MODELS = "moto.stepfunctions.parser.models"
SFN_EXCEPTIONS = "moto.stepfunctions.exceptions"
MAX_NAME_LENGTH = 80
MAX_INPUT_BYTES = 262_144
#: the characters StartExecution refuses in a name (API reference, above)
_FORBIDDEN = re.compile(
    r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f\ufffe\uffff\ud800-\udfff\U0010ffff]"
)


def name_problem(name: str) -> str | None:
    """Why StartExecution refuses this execution name (None: accepted)."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        return f"name is {len(name)} characters long (1 to {MAX_NAME_LENGTH} allowed)"
    bad = sorted(set(_FORBIDDEN.findall(name)))
    if bad:
        return f"name contains characters not allowed: {' '.join(repr(c) for c in bad)}"
    return None


def input_problem(execution_input: str | None) -> str | None:
    """Why StartExecution refuses this input (None: accepted)."""
    if execution_input is None:
        return None
    size = len(execution_input.encode("utf-8"))
    if size > MAX_INPUT_BYTES:
        return f"input is {size} bytes in UTF-8 ({MAX_INPUT_BYTES} allowed)"
    try:
        json.loads(execution_input)
    except ValueError as error:
        return f"input is not valid JSON: {error}"
    return None


class StepFunctionsLimits:
    def __init__(self) -> None:
        self._patcher = Patcher()

    def install(self) -> StepFunctionsLimits:
        invalid_name = lookup(SFN_EXCEPTIONS, "InvalidName")
        invalid_input = lookup(SFN_EXCEPTIONS, "InvalidExecutionInput")

        def checked(original: Callable[..., Any]) -> Callable[..., Any]:
            def start_execution(
                backend: Any,
                state_machine_arn: str,
                name: str | None = None,
                execution_input: str | None = None,
                *args: Any,
                **kwargs: Any,
            ) -> Any:
                if name is not None:
                    problem = name_problem(name)
                    if problem is not None:
                        raise invalid_name(f"Invalid Name: '{name}': {problem}")
                problem = input_problem(execution_input)
                if problem is not None:
                    raise invalid_input(f"Invalid State Machine Execution Input: {problem}")
                return original(backend, state_machine_arn, name, execution_input, *args, **kwargs)

            return start_execution

        self._patcher.replace(
            SFN_PARSER_MODELS, "StepFunctionsParserBackend.start_execution", checked
        )
        return self

    def uninstall(self) -> None:
        self._patcher.restore()
