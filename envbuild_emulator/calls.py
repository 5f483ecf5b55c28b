"""Which function made which AWS API call: the record the IAM proof (tests/iam) checks the
template's policies against.

The dispatcher runs each Lambda invocation inside ``calling_as(logical_id)``; every request that
reaches the emulated account (``AwsFaults`` wraps moto's ``BaseResponse.call_action``, which runs
in the caller's thread in-process) is recorded against the function whose invocation is current.
A ``ContextVar`` follows the invocation across the handlers' own fan-out because
``envbuild_lambda.parallel.pmap`` runs each item in a copy of the caller's context. Requests made
outside any invocation (the tests' own reads, the state machine interpreter) are not attributed.

The record is keyed by moto's service name and the API operation name, e.g.
``("servicediscovery", "CreatePrivateDnsNamespace")``; ``iam_action`` turns that into the IAM
action a policy must allow. In server mode (``envbuild emulator``) requests arrive on the server's
threads, so nothing is attributed there: the proof runs in-process.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_CURRENT_FUNCTION: ContextVar[str | None] = ContextVar("envbuild_current_function", default=None)

#: What the IAM proof keeps of each attributed request, computed before the request runs (so a
#: resource about to be deleted still has its tags): called with (moto service, operation,
#: parameters, account, region), returns the authorizations the request needs (hashable values).
Resolver = Callable[[str, str, Mapping[str, Any], str, str], Iterable[Hashable]]
_RESOLVER: list[Resolver] = []


def resolve_requests_with(resolver: Resolver | None) -> None:
    """Install (or, with None, remove) the resolver every FunctionCalls applies to the requests
    it records (tests/conftest.py installs the IAM proof's)."""
    _RESOLVER.clear()
    if resolver is not None:
        _RESOLVER.append(resolver)


#: moto's service name -> the IAM service prefix (only where they differ).
IAM_PREFIX = {"stepfunctions": "states"}

#: API operations whose IAM action is not ``<prefix>:<OperationName>``. None of the operations the
#: functions call differs today; a new one that does is added here (Service Authorization
#: Reference, "Actions defined by ...").
IAM_ACTION_EXCEPTIONS: dict[tuple[str, str], str] = {}

#: Actions AWS authorizes with the caller's credentials while it performs an operation, so the
#: caller's policy must allow them too (AWS Cloud Map API permissions reference,
#: docs.aws.amazon.com/cloud-map/latest/dg/cloud-map-api-permissions-ref.html).
ON_CALLERS_BEHALF: dict[str, tuple[str, ...]] = {
    "servicediscovery:CreatePrivateDnsNamespace": (
        "route53:CreateHostedZone",
        "route53:GetHostedZone",
        "route53:ListHostedZonesByName",
        "ec2:DescribeVpcs",
        "ec2:DescribeRegions",
    ),
    "servicediscovery:DeregisterInstance": (
        "route53:GetHealthCheck",
        "route53:DeleteHealthCheck",
        "route53:UpdateHealthCheck",
    ),
}

#: Services whose create calls with tags are also authorized as ``<prefix>:TagResource`` (ECS:
#: "tag resources on creation"; CloudWatch Logs: CreateLogGroup with tags; Cloud Map: the create
#: calls take aws:RequestTag/aws:TagKeys, kept the same way).
TAG_ON_CREATE = frozenset({"ecs", "logs", "servicediscovery"})

#: Request fields naming IAM roles that the call passes to a service (iam:PassRole): ECS
#: RegisterTaskDefinition's task and execution roles (ECS developer guide, "task IAM role").
PASSED_ROLES = {("ecs", "RegisterTaskDefinition"): ("taskRoleArn", "executionRoleArn")}

#: Create calls whose tags are authorized as a separate action: SSM PutParameter with Tags needs
#: ssm:AddTagsToResource (Systems Manager user guide, "Tagging Systems Manager parameters").
TAGS_AUTHORIZED_AS = {("ssm", "PutParameter"): "ssm:AddTagsToResource"}


def implied_by_request(
    service: str, operation: str, parameters: Mapping[str, Any]
) -> dict[str, str]:
    """IAM actions a request needs beyond its own because of what it carries: {action: why}."""
    implied: dict[str, str] = {}
    if service in TAG_ON_CREATE and (parameters.get("Tags") or parameters.get("tags")):
        implied[f"{IAM_PREFIX.get(service, service)}:TagResource"] = (
            f"{operation} with tags (tag on create)"
        )
    tag_action = TAGS_AUTHORIZED_AS.get((service, operation))
    if tag_action is not None and parameters.get("Tags"):
        implied[tag_action] = f"{operation} with tags"
    roles = [parameters.get(name) for name in PASSED_ROLES.get((service, operation), ())]
    if any(roles):
        implied["iam:PassRole"] = f"{operation} names roles for ECS tasks"
    return implied


def iam_action(service: str, operation: str) -> str:
    """The IAM action a policy must allow for ``operation`` of moto's ``service``."""
    exception = IAM_ACTION_EXCEPTIONS.get((service, operation))
    if exception is not None:
        return exception
    return f"{IAM_PREFIX.get(service, service)}:{operation}"


@contextmanager
def calling_as(logical_id: str) -> Iterator[None]:
    """Attribute the AWS calls made in this block (and the pmap workers it starts) to a function."""
    token = _CURRENT_FUNCTION.set(logical_id)
    try:
        yield
    finally:
        _CURRENT_FUNCTION.reset(token)


def current_function() -> str | None:
    return _CURRENT_FUNCTION.get()


class FunctionCalls:
    """function logical id -> Counter of (moto service, operation) it called, and the actions its
    requests implied (``implied_by_request``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, Counter[tuple[str, str]]] = {}
        self._implied: dict[str, dict[str, str]] = {}
        self._resolved: dict[str, set[Hashable]] = {}

    def record(
        self,
        service: str,
        operation: str,
        parameters: Mapping[str, Any] | None = None,
        account: str = "",
        region: str = "",
    ) -> None:
        function = _CURRENT_FUNCTION.get()
        if function is None:
            return
        implied = implied_by_request(service, operation, parameters or {})
        resolved = [
            item
            for resolver in _RESOLVER
            for item in resolver(service, operation, parameters or {}, account, region)
        ]
        with self._lock:
            self._calls.setdefault(function, Counter())[(service, operation)] += 1
            for action, why in implied.items():
                self._implied.setdefault(function, {}).setdefault(action, why)
            if resolved:
                self._resolved.setdefault(function, set()).update(resolved)

    def __getstate__(self) -> dict[str, Any]:
        """What a pickle keeps (the lock is made anew): the test suite's workers send their
        recordings to each other this way (tests/conftest.py)."""
        with self._lock:
            return {"calls": self._calls, "implied": self._implied, "resolved": self._resolved}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self._calls = state["calls"]
        self._implied = state["implied"]
        self._resolved = state["resolved"]

    def merge(self, other: FunctionCalls) -> None:
        with other._lock:
            calls = {function: Counter(c) for function, c in other._calls.items()}
            implied = {function: dict(i) for function, i in other._implied.items()}
            resolved = {function: set(r) for function, r in other._resolved.items()}
        with self._lock:
            for function, counter in calls.items():
                self._calls.setdefault(function, Counter()).update(counter)
            for function, items in resolved.items():
                self._resolved.setdefault(function, set()).update(items)
            for function, actions in implied.items():
                for action, why in actions.items():
                    self._implied.setdefault(function, {}).setdefault(action, why)

    def resolved(self) -> dict[str, set[Hashable]]:
        """function logical id -> what the resolver returned for its requests (deduplicated)."""
        with self._lock:
            return {function: set(items) for function, items in self._resolved.items()}

    def by_function(self) -> dict[str, Counter[tuple[str, str]]]:
        with self._lock:
            return {function: Counter(calls) for function, calls in self._calls.items()}

    def required_actions(self) -> dict[str, dict[str, str]]:
        """function logical id -> {IAM action its policy must allow: why (the call behind it)}."""
        with self._lock:
            calls = {function: Counter(c) for function, c in self._calls.items()}
            implied = {function: dict(i) for function, i in self._implied.items()}
        required: dict[str, dict[str, str]] = {}
        for function, counter in calls.items():
            actions = required[function] = {}
            for (service, operation), times in sorted(counter.items()):
                action = iam_action(service, operation)
                actions[action] = f"called {operation} x{times}"
                for on_behalf in ON_CALLERS_BEHALF.get(action, ()):
                    actions.setdefault(on_behalf, f"on the caller's behalf by {action}")
            for action, why in sorted(implied.get(function, {}).items()):
                actions.setdefault(action, why)
        return required
