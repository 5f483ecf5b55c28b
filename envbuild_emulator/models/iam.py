"""IAM SimulatePrincipalPolicy, which moto 5.2.5 does not implement.

The simulation evaluates the identity-based policies of a role — its inline policies and the
default version of each managed policy attached to it — for every action x resource of the
request, as the IAM policy simulator does
(https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html) and by
the rules of "Policy evaluation logic"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny wins over any Allow (``explicitDeny``), else an Allow (``allowed``), else
``implicitDeny``. A statement applies when its Action (or NotAction) matches the action,
case-insensitively, its Resource (or NotResource) matches the resource ARN, case-sensitively,
both with the ``*`` and ``?`` wildcards, and its Condition holds for the request's
ContextEntries (a key the request does not give: the condition does not hold, and the key is
listed in MissingContextValues).

Not modelled (the simulator's answer would differ): resource-based policies (a secret's or a
KMS key's own policy), permissions boundaries, service control policies and resource control
policies, session policies, policy variables (``${aws:username}``), condition operators other
than the String, Arn, Bool and Null families (such a statement's condition does not hold), and
a user's or group's policies (PolicySourceArn must name a role).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

__all__ = [
    "PolicyStatement",
    "SimulationError",
    "evaluate",
    "role_statements",
    "simulate_principal_policy",
]

#: MaxItems when the request gives none (the API's default) and its bounds.
DEFAULT_MAX_ITEMS = 100
MAX_ITEMS = 1000


class SimulationError(Exception):
    """An error IAM answers with: its code (NoSuchEntity, InvalidInput) and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PolicyStatement:
    """One statement of a role's policy, with where it comes from (MatchedStatements)."""

    source_id: str  # the inline policy's name or the managed policy's ARN
    source_type: str  # role (inline) | user-managed | aws-managed
    effect: str
    statement: Mapping[str, Any]


def _document(raw: object) -> dict[str, Any]:
    if isinstance(raw, str):
        text = raw if raw.lstrip().startswith("{") else unquote(raw)
        return dict(json.loads(text))
    return dict(raw) if isinstance(raw, Mapping) else {}


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = document.get("Statement", [])
    return [found] if isinstance(found, Mapping) else list(found)


def role_statements(role: Any) -> list[PolicyStatement]:
    """The statements of a moto Role's inline policies and attached managed policies."""
    found: list[PolicyStatement] = []
    for name, raw in sorted(role.policies.items()):
        for statement in _statements(_document(raw)):
            found.append(PolicyStatement(name, "role", str(statement.get("Effect")), statement))
    for arn, policy in sorted(role.managed_policies.items()):
        default = next((v for v in policy.versions if v.is_default), None)
        if default is None:
            continue
        kind = "aws-managed" if ":iam::aws:policy/" in arn else "user-managed"
        for statement in _statements(_document(default.document)):
            found.append(PolicyStatement(arn, kind, str(statement.get("Effect")), statement))
    return found


def _values(value: object) -> list[str]:
    if value is None:
        return []
    return [str(value)] if isinstance(value, str | int | float | bool) else [str(v) for v in value]  # type: ignore[union-attr]


def _glob(pattern: str, text: str, *, case: bool) -> bool:
    """IAM's wildcard match: ``*`` any run of characters (``:`` and ``/`` included), ``?`` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, 0 if case else re.IGNORECASE) is not None


def _matches(statement: Mapping[str, Any], key: str, value: str, *, case: bool) -> bool:
    """Action/NotAction or Resource/NotResource of the statement against ``value``."""
    if key in statement:
        return any(_glob(p, value, case=case) for p in _values(statement[key]))
    negated = f"Not{key}"
    if negated in statement:
        return not any(_glob(p, value, case=case) for p in _values(statement[negated]))
    return False


_OPERATOR = re.compile(
    r"^(?:(?P<qualifier>ForAllValues|ForAnyValue):)?(?P<base>[A-Za-z]+?)(?P<if_exists>IfExists)?$"
)


def _value_matches(base: str, value: str, wanted: str) -> bool | None:
    """Whether one context value meets one condition value (None: an operator not modelled)."""
    if base in ("StringEquals", "ArnEquals"):
        return value == wanted
    if base == "StringEqualsIgnoreCase":
        return value.lower() == wanted.lower()
    if base in ("StringLike", "ArnLike"):
        return _glob(wanted, value, case=True)
    if base == "Bool":
        return value.lower() == wanted.lower()
    return None


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(
    condition: Mapping[str, Mapping[str, Any]],
    context: Mapping[str, Sequence[str]],
    missing: set[str],
) -> bool:
    """Every operator, every key: any of the key's condition values (IAM's AND of keys and OR
    of values); a negated operator holds when no value matches."""
    lowered = {k.lower(): list(v) for k, v in context.items()}
    for operator, keys in condition.items():
        parsed = _OPERATOR.match(operator)
        if parsed is None:
            return False
        qualifier, base, if_exists = parsed["qualifier"], parsed["base"], parsed["if_exists"]
        for key, raw_wanted in keys.items():
            wanted = _values(raw_wanted)
            present = lowered.get(key.lower())
            if base == "Null":
                is_null = present is None
                if not any((w.lower() == "true") == is_null for w in wanted):
                    return False
                continue
            if present is None:
                if if_exists or qualifier == "ForAllValues":
                    continue
                missing.add(key)
                return False
            positive = _NEGATED.get(base, base)
            hits = []
            for value in present:
                results = [_value_matches(positive, value, w) for w in wanted]
                if None in results:
                    return False  # an operator the model does not evaluate: never holds
                hits.append(any(results))
            if base in _NEGATED:
                hits = [not h for h in hits]
            ok = all(hits) if qualifier == "ForAllValues" else any(hits)
            if not ok:
                return False
    return True


def evaluate(
    statements: Iterable[PolicyStatement],
    action: str,
    resource: str,
    context: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, list[PolicyStatement], list[str]]:
    """(EvalDecision, the statements that decided it, missing context keys) of one request."""
    allows: list[PolicyStatement] = []
    denies: list[PolicyStatement] = []
    missing: set[str] = set()
    for statement in statements:
        body = statement.statement
        if not _matches(body, "Action", action, case=False):
            continue
        if not _matches(body, "Resource", resource, case=True):
            continue
        if not _condition_holds(body.get("Condition") or {}, context or {}, missing):
            continue
        (denies if statement.effect == "Deny" else allows).append(statement)
    if denies:
        return "explicitDeny", denies, sorted(missing)
    if allows:
        return "allowed", allows, sorted(missing)
    return "implicitDeny", [], sorted(missing)


def _matched(statements: list[PolicyStatement]) -> list[dict[str, Any]]:
    return [{"SourcePolicyId": s.source_id, "SourcePolicyType": s.source_type} for s in statements]


def _context(entries: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    return {
        str(entry["ContextKeyName"]): [str(v) for v in entry.get("ContextKeyValues") or []]
        for entry in entries
    }


def simulate_principal_policy(
    iam_backend: Any,
    policy_source_arn: str,
    action_names: Sequence[str],
    resource_arns: Sequence[str] | None = None,
    context_entries: Iterable[Mapping[str, Any]] = (),
    max_items: int | None = None,
    marker: str | None = None,
) -> dict[str, Any]:
    """SimulatePrincipalPolicy's answer: one EvaluationResult per action x resource (resource
    ``*`` when none is given), paged by MaxItems and Marker."""
    if ":role/" not in policy_source_arn:
        raise SimulationError(
            "InvalidInput",
            f"The emulator simulates roles only; {policy_source_arn} is no role ARN",
        )
    role = next((r for r in iam_backend.roles.values() if r.arn == policy_source_arn), None)
    if role is None:
        name = policy_source_arn.rsplit("/", 1)[-1]
        raise SimulationError("NoSuchEntity", f"The role with name {name} cannot be found.")
    if not action_names:
        raise SimulationError("InvalidInput", "ActionNames must name at least one action")
    limit = DEFAULT_MAX_ITEMS if max_items is None else int(max_items)
    if not 1 <= limit <= MAX_ITEMS:
        raise SimulationError("InvalidInput", f"MaxItems must be 1..{MAX_ITEMS}")
    statements = role_statements(role)
    context = _context(context_entries)
    results = []
    for action in action_names:
        for resource in resource_arns or ["*"]:
            decision, deciding, missing = evaluate(statements, action, resource, context)
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": decision,
                    "MatchedStatements": _matched(deciding),
                    "MissingContextValues": missing,
                }
            )
    start = int(marker) if marker and marker.isdigit() else 0
    page = results[start : start + limit]
    answer: dict[str, Any] = {
        "EvaluationResults": page,
        "IsTruncated": start + limit < len(results),
    }
    if answer["IsTruncated"]:
        answer["Marker"] = str(start + limit)
    return answer


def install(patcher: Any) -> None:
    """Give moto's IAM the SimulatePrincipalPolicy action (``IamResponse`` has no handler)."""
    from envbuild_emulator.moto_internals import lookup

    action_result = lookup("moto.core.responses", "ActionResult")

    def simulate(response: Any) -> Any:
        params = response._get_params()
        try:
            answer = simulate_principal_policy(
                response.backend,
                str(params.get("PolicySourceArn", "")),
                [str(a) for a in params.get("ActionNames") or []],
                [str(r) for r in params.get("ResourceArns") or []] or None,
                params.get("ContextEntries") or [],
                int(params["MaxItems"]) if params.get("MaxItems") else None,
                params.get("Marker"),
            )
        except SimulationError as error:
            raise lookup("moto.iam.exceptions", error.code)(error.message) from None
        return action_result(answer)

    patcher.add("moto.iam.responses", "IamResponse.simulate_principal_policy", simulate)
