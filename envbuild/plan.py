"""`envbuild plan SPEC`: what a build of the spec would change, as a table; changes nothing.

The build workflow runs with ``plan: true``: validation, preflight and the diff (one "Plan
Changes" step), then it ends. docs/convergence.md describes the rows; envbuild/report.py their
contract.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from envbuild.cli import (
    STATE_MACHINE_NAME,
    finish,
    progress_stream,
    read_spec,
    start_and_follow,
    target,
)
from envbuild.report import Result, format_table, write_table

__all__ = ["format_table", "plan", "print_plan"]


def print_plan(result: Result, out: TextIO) -> None:
    out.write(f"\nPlan for environment {result.environment} (nothing was changed):\n")
    write_table(result.changes, out)
    out.write(f"\n{result.message}.\n")


def plan(args: argparse.Namespace, out: TextIO) -> int:
    read_spec(Path(args.spec))  # a bad file is reported before an emulator starts
    progress = progress_stream(args, out)
    with target(args, progress) as where:
        spec = where.load_spec(Path(args.spec))
        described = start_and_follow(
            where.sfn,
            where.state_machine(STATE_MACHINE_NAME),
            {**spec, "plan": True},
            args,
            progress,
            where.clock,
            "Planning",
            where.polling,
        )
        return finish(where.sfn, described, args, out)
