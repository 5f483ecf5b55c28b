"""`envbuild plan SPEC`: what a build of the spec would change, as a table; changes nothing.

The build workflow runs with ``plan: true``: validation, preflight and the diff (one "Plan
Changes" step), then it ends. docs/convergence.md describes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from envbuild.cli import (
    STATE_MACHINE_NAME,
    load_spec,
    read_spec,
    report_failure,
    start_and_follow,
    target,
)

COLUMNS = ("RESOURCE", "NAME", "ACTION", "CHANGES")


def detail(row: Mapping[str, Any]) -> str:
    """The CHANGES cell: 'field: old -> new' joined by '; ', else the row's note."""
    fields: Mapping[str, Sequence[Any]] = row.get("fields") or {}
    changes = [f"{name}: {_shown(old)} -> {_shown(new)}" for name, (old, new) in fields.items()]
    if changes:
        text = "; ".join(changes)
        note = row.get("note")
        return f"{text} ({note})" if note else text
    return str(row.get("note") or "")


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per resource, columns aligned; the last column is not padded."""
    cells = [(str(r["kind"]), str(r["name"]), str(r["action"]), detail(r)) for r in rows]
    widths = [max(len(c[i]) for c in [COLUMNS, *cells]) for i in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True))
        + ("  " + line[3] if line[3] else "")
        for line in [COLUMNS, *cells]
    ]


def print_plan(output: Mapping[str, Any], out: TextIO) -> None:
    out.write(f"\nPlan for environment {output['environment']} (nothing was changed):\n")
    for line in format_table(output["changes"]):
        out.write(f"  {line.rstrip()}\n")
    out.write(f"\n{output['message']}.\n")


def plan(args: argparse.Namespace, out: TextIO) -> int:
    read_spec(Path(args.spec))  # a bad file is reported before an emulator starts
    with target(args, out) as where:
        spec = load_spec(Path(args.spec), os.environ, where.prerequisites)
        described = start_and_follow(
            where.sfn,
            where.state_machine(STATE_MACHINE_NAME),
            {**spec, "plan": True},
            args,
            out,
            where.clock,
            "Planning",
        )
    if described["status"] != "SUCCEEDED":
        return report_failure(described, "Plan", out)
    print_plan(json.loads(described["output"]), out)
    return 0
