"""EventBridge -> Step Functions targets, which moto 5.2.5 does not deliver (NotImplementedError).

Follows the EventBridge user guide ("Step Functions state machine as a target"): a matching event
starts an execution of the target state machine, with the target's ``InputPath`` applied to the
event (``$.detail`` in envbuild's template) or the whole event as input.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from envbuild_emulator.moto_internals import Patcher, lookup

EVENTS_MODELS = "moto.events.models"
SFN_RESPONSES = "moto.stepfunctions.responses"


def _json_path(document: Any, path: str) -> Any:
    """The subset of JSONPath EventBridge's InputPath uses: $ and $.a.b."""
    if path in ("", "$"):
        return document
    if not path.startswith("$."):
        raise ValueError(f"unsupported InputPath {path!r}")
    for part in path[2:].split("."):
        document = document[part]
    return document


class EventBridgeToStepFunctions:
    def __init__(self) -> None:
        self._patcher = Patcher()
        self.started: list[str] = []

    def install(self) -> EventBridgeToStepFunctions:
        get_backend = lookup(SFN_RESPONSES, "get_backend")
        started = self.started

        def deliver(original: Any) -> Any:
            def send_to_targets(
                rule: Any, original_event: Any, transform_input: bool = True
            ) -> None:
                states = [t for t in rule.targets if t["Arn"].split(":")[2] == "states"]
                others = [t for t in rule.targets if t not in states]
                if others:
                    shallow = copy.copy(rule)
                    shallow.targets = others
                    original(shallow, original_event, transform_input)
                if not states or not rule.event_pattern.matches_event(original_event):
                    return
                for target in states:
                    document = _json_path(original_event, target.get("InputPath", "$"))
                    arn = target["Arn"]
                    account, region = arn.split(":")[4], arn.split(":")[3]
                    execution = get_backend(account, region).start_execution(
                        arn, f"event-{uuid.uuid4()}", json.dumps(document)
                    )
                    started.append(execution.execution_arn)

            return send_to_targets

        self._patcher.replace(EVENTS_MODELS, "Rule.send_to_targets", deliver)
        return self

    def uninstall(self) -> None:
        self._patcher.restore()
