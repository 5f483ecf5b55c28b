"""Faults injected into the emulated AWS API, for the fault suite and for trying failure paths.

    faults = emulator.aws_faults
    faults.throttle("ecs", "RegisterTaskDefinition", times=8)   # ThrottlingException (400)
    faults.unavailable("servicediscovery", "CreateService")     # ServiceUnavailable (503)
    faults.lose_response("ecs", "CreateService")                 # applied, then the connection drops
    faults.deny("cloudformation", "DescribeStacks")              # AccessDenied (403), as IAM answers
    faults.fail_entries("events", "PutEvents")                   # 200, every entry failed

Each fault answers the next ``times`` matching requests. ``lose_response`` performs the request
first: AWS applied the change but the caller never hears of it, so the SDK retries and meets what
its first attempt created. Every request (service, action) is also counted, for assertions on the
calls a build makes, and recorded against the Lambda function that made it (``function_calls``,
see calls.py), for the IAM proof.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
from botocore.exceptions import ConnectionClosedError

from envbuild_emulator.calls import FunctionCalls, current_function
from envbuild_emulator.moto_internals import Patcher, lookup

#: Actions that change nothing (IAM's SimulatePrincipalPolicy evaluates policies, reads only).
READ_PREFIXES = ("Describe", "List", "Get", "Discover", "Simulate")
FAKE_PRINCIPAL = "arn:aws:iam::123456789012:user/emulated"


def access_denied(service: str, action: str) -> tuple[int, dict[str, str], str]:
    """IAM's answer to a call the principal may not make, in the service's protocol: HTTP 403 with
    ``AccessDeniedException`` (JSON protocols) or ``AccessDenied`` (query/XML protocols), the
    message naming the principal and the action (AWS IAM User Guide, "Troubleshoot access denied
    error messages")."""
    protocol = botocore.session.get_session().get_service_model(service).protocol
    message = f"User: {FAKE_PRINCIPAL} is not authorized to perform: {service}:{action}"
    if protocol in ("json", "rest-json"):
        code = "AccessDeniedException"
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
        return 403, headers, json.dumps({"__type": code, "message": message})
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
        f"<Message>{escape(message)}</Message></Error><RequestId>emulated</RequestId></ErrorResponse>"
    )
    return 403, {"Content-Type": "text/xml"}, body


def is_mutating(action: str) -> bool:
    return not action.startswith(READ_PREFIXES)


def request_parameters(response: Any) -> dict[str, Any]:
    """A JSON request's parameters ({} for other protocols): what the call carries decides some
    of the IAM actions it needs (tags, roles passed; see calls.implied_by_request). The services
    whose requests imply actions (ECS, Cloud Map, CloudWatch Logs) all speak JSON."""
    body = getattr(response, "body", None)
    if not body:
        return {}
    try:
        document = json.loads(body)
    except (TypeError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


@dataclass
class _Rule:
    service: str
    action: str
    kind: str
    remaining: int


class AwsFaults:
    def __init__(self) -> None:
        self._patcher = Patcher()
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self.calls: Counter[tuple[str, str]] = Counter()
        self.function_calls = FunctionCalls()

    # -- arming -------------------------------------------------------------------------------
    def throttle(self, service: str, action: str, times: int = 1) -> None:
        self._add(service, action, "throttle", times)

    def unavailable(self, service: str, action: str, times: int = 1) -> None:
        self._add(service, action, "unavailable", times)

    def lose_response(self, service: str, action: str, times: int = 1) -> None:
        self._add(service, action, "lost", times)

    def deny(self, service: str, action: str, times: int = 1) -> None:
        self._add(service, action, "deny", times)

    def fail_entries(self, service: str, action: str, times: int = 1) -> None:
        """PutEvents answers HTTP 200 with every entry failed (FailedEntryCount > 0, each entry
        an ErrorCode and ErrorMessage instead of an EventId), nothing delivered: "The PutEvents
        request ... can fail ... entries" (Amazon EventBridge API Reference, PutEvents,
        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html). The
        Step Functions integration then fails the Task with EventBridge.FailedEntry ("Call
        Amazon EventBridge with Step Functions",
        https://docs.aws.amazon.com/step-functions/latest/dg/connect-eventbridge.html)."""
        self._add(service, action, "failed_entries", times)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _add(self, service: str, action: str, kind: str, times: int) -> None:
        with self._lock:
            self._rules.append(_Rule(service, action, kind, times))

    def _take(
        self,
        service: str,
        action: str,
        parameters: dict[str, Any] | None = None,
        account: str = "",
        region: str = "",
    ) -> str | None:
        self.function_calls.record(service, action, parameters, account, region)
        with self._lock:
            self.calls[(service, action)] += 1
            for rule in self._rules:
                if rule.remaining > 0 and rule.service == service and rule.action == action:
                    rule.remaining -= 1
                    return rule.kind
        return None

    def mutating_calls(self) -> int:
        return sum(n for (_, action), n in self.calls.items() if is_mutating(action))

    # -- installing ---------------------------------------------------------------------------
    def install(self) -> AwsFaults:
        error_class = lookup("moto.core.exceptions", "JsonRESTError")
        take = self._take

        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            def call_action(response: Any) -> Any:
                service = str(response.service_name or "")
                action = str(response._get_action())
                # Only a function's request is attributed: parse its body for the IAM proof then only.
                parameters = request_parameters(response) if current_function() else None
                account = str(getattr(response, "current_account", "") or "")
                kind = take(service, action, parameters, account, str(response.region or ""))
                if kind == "throttle":
                    raise error_class("ThrottlingException", "Rate exceeded (injected)")
                if kind == "unavailable":
                    error = error_class(
                        "ServiceUnavailableException", "Service unavailable (injected)"
                    )
                    error.code = 503
                    raise error
                if kind == "deny":
                    return access_denied(service, action)
                if kind == "failed_entries":
                    entries = request_parameters(response).get("Entries") or [{}]
                    failed = {
                        "ErrorCode": "InternalFailure",
                        "ErrorMessage": "Internal failure (injected)",
                    }
                    body = {"FailedEntryCount": len(entries), "Entries": [failed] * len(entries)}
                    headers = {"Content-Type": "application/x-amz-json-1.1"}
                    return 200, headers, json.dumps(body)
                result = original(response)
                if kind == "lost":
                    raise ConnectionClosedError(
                        endpoint_url=f"https://{service}.emulated (response lost, injected)"
                    )
                return result

            return call_action

        self._patcher.replace("moto.core.responses", "BaseResponse.call_action", wrap)
        return self

    def uninstall(self) -> None:
        self._patcher.restore()
