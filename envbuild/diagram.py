"""Mermaid (`stateDiagram-v2`) diagrams of the workflows, generated from their ASL.

    python -m envbuild.diagram statemachine/build_environment.asl.json   # print one diagram
    make docs                                                            # rewrite them in docs/architecture.md

What is drawn, for reading at a glance: every state (Choice names end in "?"); Next and Default
edges; each Choice rule labelled by its condition; Parallel branches and Map iterations as nested
states; Catch edges labelled "✗ <errors>" (States.ALL: "✗ any error"); Fail states in red with
their Error. Retries are not drawn: one note lists what Tasks retry.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STATE_MACHINES = {
    "build": REPO / "statemachine" / "build_environment.asl.json",
    "teardown": REPO / "statemachine" / "teardown_environment.asl.json",
}
INDENT = "    "


def node_id(name: str) -> str:
    """A Mermaid id for a state name ("Namespace Ready?" -> NamespaceReadyQ, beside "Roll Back"
    -> RollBack and "Roll Back?" -> RollBackQ)."""
    words = re.findall(r"[A-Za-z0-9]+", name)
    return "".join(word[:1].upper() + word[1:] for word in words) + (
        "Q" if name.endswith("?") else ""
    )


def all_states(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Every state by name, nested ones included (names are unique in a state machine)."""
    found = dict(definition["States"])
    for state in definition["States"].values():
        for branch in state.get("Branches", []):
            found |= all_states(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found |= all_states(processor)
    return found


def field(path: str) -> str:
    return path.rsplit(".", 1)[-1].lstrip("$")


def condition(rule: Mapping[str, Any]) -> str:
    """A Choice rule as a short label: "status = SUCCESS", "attempt ≥ maxAttempts", "ready"."""
    for joiner in ("And", "Or"):
        if joiner in rule:
            return f" {joiner.lower()} ".join(condition(inner) for inner in rule[joiner])
    if "Not" in rule:
        return f"not ({condition(rule['Not'])})"
    variable = field(str(rule.get("Variable", "")))
    symbols = {
        "Equals": "=",
        "GreaterThanEquals": "≥",
        "GreaterThan": ">",
        "LessThanEquals": "≤",
        "LessThan": "<",
    }
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key == "IsPresent":
            return f"{variable} {'present' if value else 'absent'}"
        if key == "BooleanEquals":
            return variable if value else f"not {variable}"
        for suffix, symbol in symbols.items():
            for kind in ("String", "Numeric", "Timestamp", "Boolean"):
                if key == f"{kind}{suffix}":
                    return f"{variable} {symbol} {value}"
                if key == f"{kind}{suffix}Path":
                    return f"{variable} {symbol} {field(str(value))}"
        return f"{variable} {key} {value}"
    return variable


def catch_label(errors: list[str]) -> str:
    return "✗ any error" if "States.ALL" in errors else "✗ " + ", ".join(errors)


def label(name: str, state: Mapping[str, Any]) -> str:
    kind = state["Type"]
    if kind == "Fail":
        error = state.get("Error") or ("the failed step's Error" if "ErrorPath" in state else "")
        return f"{name} ✗ {error}".rstrip()
    if kind == "Pass" and isinstance(state.get("Parameters"), dict):
        error = state["Parameters"].get("Error")
        if isinstance(error, str):
            return f"{name} ({error})"
    if kind == "Map":
        return f"{name} (for each item)"
    if kind == "Task":
        started = (state.get("Parameters") or {}).get("StateMachineArn")
        if isinstance(started, str) and started.startswith("${"):
            machine = started.strip("${}").removesuffix("Arn").removesuffix("StateMachine")
            return f"{name} (runs the {re.sub(r'(?<!^)([A-Z])', r' \1', machine).lower()} workflow)"
    return name


def retried_errors(states: Mapping[str, Any]) -> list[str]:
    errors: set[str] = set()
    for state in states.values():
        for retrier in state.get("Retry", []):
            errors |= set(retrier.get("ErrorEquals", []))
        for branch in state.get("Branches", []):
            errors |= set(retried_errors(branch["States"]))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            errors |= set(retried_errors(processor["States"]))
    families = Counter(e.split(".")[0] for e in errors if "." in e)
    grouped = {
        f"{e.split('.')[0]}.*"
        if "." in e and families[e.split(".")[0]] > 1 and not e.startswith("States.")
        else e
        for e in errors
    }
    return sorted(grouped)


class Mermaid:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failures: list[str] = []

    def emit(self, depth: int, text: str) -> None:
        self.lines.append(INDENT * depth + text)

    def machine(self, definition: Mapping[str, Any], depth: int) -> None:
        """One state list (the top level, a Parallel branch or a Map's iteration)."""
        states: Mapping[str, Any] = definition["States"]
        self.emit(depth, f"[*] --> {node_id(definition['StartAt'])}")
        for name, state in states.items():
            self.state(name, state, depth)
        for name, state in states.items():
            self.edges(name, state, depth)

    def state(self, name: str, state: Mapping[str, Any], depth: int) -> None:
        ident = node_id(name)
        self.emit(depth, f'state "{label(name, state)}" as {ident}')
        if state["Type"] == "Fail" and depth == 1:  # Mermaid styles top-level states only
            self.failures.append(ident)
        branches = list(state.get("Branches", []))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            branches.append(processor)
        if branches:
            self.emit(depth, f"state {ident} {{")
            for index, branch in enumerate(branches):
                if index:
                    self.emit(depth + 1, "--")
                self.machine(branch, depth + 1)
            self.emit(depth, "}")

    def edges(self, name: str, state: Mapping[str, Any], depth: int) -> None:
        ident = node_id(name)
        if state["Type"] == "Choice":
            for rule in state["Choices"]:
                self.emit(depth, f"{ident} --> {node_id(rule['Next'])}: {condition(rule)}")
            if "Default" in state:
                self.emit(depth, f"{ident} --> {node_id(state['Default'])}: otherwise")
        elif "Next" in state:
            self.emit(depth, f"{ident} --> {node_id(state['Next'])}")
        elif state.get("End") or state["Type"] in ("Succeed", "Fail"):
            self.emit(depth, f"{ident} --> [*]")
        for catcher in state.get("Catch", []):
            target = node_id(catcher["Next"])
            self.emit(depth, f"{ident} --> {target}: {catch_label(catcher['ErrorEquals'])}")


def mermaid(definition: Mapping[str, Any]) -> str:
    names = all_states(definition)
    ids = {node_id(name) for name in names}
    if len(ids) != len(names):
        raise ValueError("two state names give the same Mermaid id: rename one")
    diagram = Mermaid()
    diagram.emit(0, "stateDiagram-v2")
    diagram.machine(definition, 1)
    retried = retried_errors(definition["States"])
    if retried:
        first = node_id(definition["StartAt"])
        diagram.emit(1, f"note right of {first}")
        diagram.emit(2, "Retries are not drawn.")
        diagram.emit(2, "Tasks retry with backoff on")
        diagram.emit(2, ", ".join(retried))
        diagram.emit(1, "end note")
    diagram.emit(1, "classDef failure fill:#fde2e1,stroke:#c0392b,color:#7b241c")
    for ident in diagram.failures:
        diagram.emit(1, f"class {ident} failure")
    return "\n".join(diagram.lines) + "\n"


def mermaid_section(path: Path) -> str:
    """The docs/architecture.md section: the diagram as a ```mermaid block (GitHub renders it)."""
    definition = json.loads(path.read_text())
    source = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    return f"Generated from `{source}` by `make docs`.\n\n```mermaid\n{mermaid(definition)}```\n"


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    for path in paths or list(STATE_MACHINES.values()):
        sys.stdout.write(mermaid(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
