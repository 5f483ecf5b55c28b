"""What a finished execution did, the same for every command (`run`, `plan`, `teardown`, `watch`):
one result, printed as text for a person or as one JSON document for a script.

The rows of ``changes`` follow one contract, whatever the execution: ``{kind, name, action,
fields, note}``, ``action`` one of create / update / replace / adopt / unchanged / remove / keep /
conflict, and ``fields: {field: [old, new]}`` for an update or a replace. The build and the plan
carry them in their output (``changes``); an older plan's ``plan: [{type, name, action,
changes: ["field: old -> new"], note}]`` is read too; a teardown's rows are made here from its
``removed`` and ``kept``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

ACTIONS = (
    "create",
    "update",
    "replace",
    "adopt",
    "unchanged",
    "remove",
    "keep",
    "conflict",
)
#: Older plans said "delete" for what is now "remove".
_OLD_ACTIONS = {"delete": "remove"}
_OLD_FIELD = re.compile(r"^(?P<field>[^:]+): (?P<old>.*) -> (?P<new>.*)$")


def _row(kind: str, name: str, action: str, note: str = "", fields: Any = None) -> dict[str, Any]:
    return {"kind": kind, "name": name, "action": action, "fields": fields or {}, "note": note}


def _old_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of an older plan (``type``, ``changes: ["field: old -> new"]``) in the contract."""
    fields: dict[str, list[str]] = {}
    notes = []
    for text in row.get("changes") or []:
        match = _OLD_FIELD.match(str(text))
        if match:
            fields[match["field"]] = [match["old"], match["new"]]
        else:
            notes.append(str(text))
    action = _OLD_ACTIONS.get(str(row.get("action")), str(row.get("action")))
    note = "; ".join([*notes, *([str(row["note"])] if row.get("note") else [])])
    return _row(str(row.get("type") or row.get("kind")), str(row.get("name")), action, note, fields)


def contract_row(row: Mapping[str, Any]) -> dict[str, Any]:
    if "kind" in row and isinstance(row.get("fields", {}), Mapping):
        return _row(
            str(row["kind"]),
            str(row.get("name", "")),
            str(row.get("action", "")),
            str(row.get("note") or ""),
            {str(k): list(v) for k, v in (row.get("fields") or {}).items()},
        )
    return _old_row(row)


def build_changes(output: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a build's or a plan's output (``changes``; an older plan's ``plan``)."""
    rows = output.get("changes")
    if not isinstance(rows, list):
        rows = output.get("plan") if isinstance(output.get("plan"), list) else []
    return [contract_row(row) for row in rows if isinstance(row, Mapping)]


def removal_changes(
    plan: Mapping[str, Any], kept: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The rows of a teardown: what it removed (or would remove: a removal plan), and kept."""
    names = plan.get("registryNames") or {}
    namespace = plan.get("namespace")
    rows = [_row("ecsService", name, "remove") for name in sorted(plan.get("ecsServices", []))]
    rows += [_row("instance", name, "remove") for name in sorted(plan.get("instances", []))]
    rows += sorted(
        (
            _row("registry", names.get(registry, registry), "remove", registry)
            for registry in plan.get("registries", [])
        ),
        key=lambda row: str(row["name"]),
    )
    if namespace:
        rows.append(_row("namespace", namespace["name"], "remove", namespace["id"]))
    rows += [_row("logGroup", name, "remove") for name in plan.get("logGroups", [])]
    rows += [_row("taskDefinition", name, "remove") for name in plan.get("taskDefinitions", [])]
    rows += [_row("parameter", name, "remove") for name in plan.get("parameters", [])]
    rows += [_row(str(k["type"]), str(k["name"]), "keep", str(k["reason"])) for k in kept]
    return rows


# -- one result -----------------------------------------------------------------------------------
@dataclass
class Result:
    """A finished execution, as every command reports it."""

    kind: str  # build | plan | teardown | teardown-plan | prune | rollback
    status: str
    execution: str
    environment: str | None
    changes: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    message: str = ""
    error: str | None = None
    cause: str | None = None
    rollback: str | None = None
    pruned: str | None = None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def document(self) -> dict[str, Any]:
        counts = Counter(row["action"] for row in self.changes)
        given = (self.summary or {}).get("counts")
        if isinstance(given, dict):  # the output's own counts (unchanged rows are only counted)
            counts = Counter({str(k): int(v) for k, v in given.items()})
        doc: dict[str, Any] = {
            "status": self.status,
            "kind": self.kind,
            "execution": self.execution,
            "environment": self.environment,
            "changes": self.changes,
            "counts": {action: n for action, n in counts.items() if n},
            "summary": self.summary,
            "message": self.message,
        }
        if self.pruned is not None:
            doc["pruned"] = self.pruned
        if self.warnings:
            doc["warnings"] = self.warnings
        if not self.succeeded:
            doc |= {"error": self.error, "cause": self.cause, "rollback": self.rollback}
        return doc | self.extra


def write_json(result: Result, out: TextIO) -> None:
    out.write(json.dumps(result.document(), indent=2, default=str) + "\n")


# -- text ---------------------------------------------------------------------------------------
COLUMNS = ("RESOURCE", "NAME", "ACTION", "CHANGES")


def detail(row: Mapping[str, Any]) -> str:
    """The CHANGES cell: 'field: old -> new' joined by '; ', then the note in parentheses."""
    fields = row.get("fields") or {}
    text = "; ".join(f"{name}: {shown(old)} -> {shown(new)}" for name, (old, new) in fields.items())
    note = str(row.get("note") or "")
    if text and note:
        return f"{text} ({note})"
    return text or note


def shown(value: Any) -> str:
    """A field's value in the table: None as (none), objects and lists as JSON."""
    if value is None:
        return "(none)"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per resource, columns aligned; the last column is not padded."""
    cells = [
        (str(r["kind"]), str(r["name"]), str(r["action"]), detail(r))
        for r in (contract_row(row) for row in rows)
    ]
    widths = [max(len(c[i]) for c in [COLUMNS, *cells]) for i in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True))
        + ("  " + line[3] if line[3] else "")
        for line in [COLUMNS, *cells]
    ]


def write_table(rows: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    for line in format_table(rows):
        out.write(f"  {line.rstrip()}\n")


# -- from an execution ----------------------------------------------------------------------------
def _json(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except (TypeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def kind_of(state_machine_arn: str, document: Mapping[str, Any]) -> str:
    """What an execution is, from its state machine and its input: build / plan (the build
    workflow with ``plan: true``), teardown / teardown-plan (``planOnly: true``) / rollback
    (``createdBy``: a failed build's) / prune (a build's, for a removal plan it made)."""
    if "Teardown" in state_machine_arn.rsplit(":", 1)[-1]:
        if document.get("createdBy"):
            return "rollback"
        started_by = document.get("AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID")
        if isinstance(document.get("plan"), dict) and started_by:
            return "prune"
        return "teardown-plan" if document.get("planOnly") is True else "teardown"
    return "plan" if document.get("plan") is True else "build"


#: The states of a failed build that record what happened to what it had created.
ROLLBACK_STATES = ("Roll Back", "Rollback Failed", "Keep What Was Built", "Nothing Was Created")


def from_history(history: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(rollback outcome, prune outcome) as the build's states recorded them."""
    rollback = pruned = None
    for event in history:
        details = event.get("stateExitedEventDetails") or {}
        name = details.get("name")
        if name in ROLLBACK_STATES:
            outcome = (_json(details.get("output")).get("rollback") or {}).get("outcome")
            rollback = str(outcome) if outcome else rollback
        elif name == "Prune Removed Services":
            outcome = (_json(details.get("output")).get("pruned") or {}).get("outcome")
            pruned = str(outcome) if outcome else pruned
    return rollback, pruned


def step_warnings(event: Mapping[str, Any]) -> list[str]:
    """The warnings a step's result carries (the preflight's: ``{"warnings": [...]}``) in one
    history event; a state with ResultPath null drops the result from the state's output, not
    from its Lambda's (or task's) succeeded event."""
    details = (
        event.get("lambdaFunctionSucceededEventDetails")
        or event.get("taskSucceededEventDetails")
        or {}
    )
    found = _json(details.get("output")).get("warnings")
    return [str(w) for w in found] if isinstance(found, list) else []


def warnings_from_history(history: list[dict[str, Any]]) -> list[str]:
    """Every step's warnings, in order, each once."""
    return list(dict.fromkeys(w for event in history for w in step_warnings(event)))


def error_message(cause: str) -> str:
    """A Lambda error's Cause is JSON ({errorType, errorMessage, stackTrace}); show its message."""
    try:
        parsed = json.loads(cause)
    except (TypeError, json.JSONDecodeError):
        return cause
    return str(parsed.get("errorMessage", cause)) if isinstance(parsed, dict) else cause


def collect(described: Mapping[str, Any], history: list[dict[str, Any]]) -> Result:
    """The Result of a stopped execution (DescribeExecution and its history)."""
    document = _json(described.get("input"))
    kind = kind_of(str(described.get("stateMachineArn", "")), document)
    output = _json(described.get("output"))
    plan_environment = (document.get("plan") or {}) if kind == "prune" else {}
    result = Result(
        kind=kind,
        status=str(described["status"]),
        execution=str(described.get("executionArn", "")),
        environment=output.get("environment")
        or document.get("environment")
        or plan_environment.get("environment"),
        summary=output or None,
        message=str(output.get("message") or ""),
    )
    rollback, pruned = from_history(history) if kind == "build" else (None, None)
    result.pruned = pruned
    result.warnings = warnings_from_history(history)
    if not result.succeeded:
        result.error = str(described.get("error") or described["status"])
        result.cause = error_message(str(described.get("cause") or ""))
        result.rollback = rollback
        result.summary = None
        return result
    if kind in ("build", "plan"):
        result.changes = build_changes(output)
        if kind == "plan":
            result.extra["conflicts"] = output.get("conflicts", 0)
    elif kind == "teardown-plan":
        plan = output.get("plan") or {}
        result.changes = removal_changes(plan, plan.get("kept", []))
        result.message = result.message or _plan_message(result.changes)
    else:
        result.changes = removal_changes(output.get("removed") or {}, output.get("kept", []))
    return result


def _plan_message(rows: Sequence[Mapping[str, Any]]) -> str:
    counts = Counter(row["action"] for row in rows)
    if not rows:
        return "nothing to remove"
    return f"{counts['remove']} to remove, {counts['keep']} kept"
