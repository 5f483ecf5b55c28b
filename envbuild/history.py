"""`envbuild history ENVIRONMENT`: the recent builds and teardowns of one environment.

Both state machines of the stack are listed (ListExecutions, newest first, one page of SCAN each:
bounded). An execution belongs to the environment when its input names it (``environment``, or a
removal plan's ``plan.environment``); its KIND comes from its input too (envbuild/report.py
``kind_of``): build, plan (``plan: true``), teardown, teardown-plan (``planOnly``), rollback (a
failed build's teardown, ``createdBy``), prune (a build's teardown of a removal plan). So every
listed execution is described (DescribeExecution, bounded by SCAN as well).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from envbuild.report import error_message, kind_of
from envbuild.stack import aws_errors, connect, output, stack_outputs

SCAN = 100  # executions listed per state machine (ListExecutions' maximum page)


@dataclass(frozen=True)
class Row:
    started: datetime
    kind: str
    status: str
    duration: str
    name: str
    error: str


def duration(started: datetime, stopped: datetime | None, now: datetime) -> str:
    seconds = int(((stopped or now) - started).total_seconds())
    text = f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
    return text if stopped else f"{text} so far"


def environment_of(document: dict[str, Any]) -> str | None:
    plan = document.get("plan")
    value = plan.get("environment") if isinstance(plan, dict) else document.get("environment")
    return str(value) if value is not None else None


def rows(sfn: Any, machine_arn: str, environment: str, now: datetime) -> list[Row]:
    listed = sfn.list_executions(stateMachineArn=machine_arn, maxResults=SCAN)["executions"]
    found: list[Row] = []
    for execution in listed:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        try:
            document = json.loads(described.get("input") or "{}")
        except json.JSONDecodeError:
            continue
        if not isinstance(document, dict) or environment_of(document) != environment:
            continue
        kind_here = kind_of(machine_arn, document)
        error = ""
        if execution["status"] in ("FAILED", "TIMED_OUT", "ABORTED"):
            error = str(described.get("error") or "")
            cause = error_message(str(described.get("cause") or ""))
            error = f"{error}: {cause}"[:100] if cause else error
        found.append(
            Row(
                execution["startDate"],
                kind_here,
                execution["status"],
                duration(execution["startDate"], execution.get("stopDate"), now),
                execution["name"],
                error,
            )
        )
    return found


def history(args: argparse.Namespace, out: TextIO) -> int:
    aws = connect(args)
    with aws_errors(aws):
        outputs = stack_outputs(aws.client("cloudformation"), args.stack_name, aws.region)
        machines = {
            "build": output(outputs, "BuildEnvironmentStateMachineArn", args.stack_name),
            "teardown": output(outputs, "TeardownEnvironmentStateMachineArn", args.stack_name),
        }  # kind_of tells them apart by the state machine's name
        sfn = aws.client("stepfunctions")
        now = datetime.now(UTC)
        found = [row for arn in machines.values() for row in rows(sfn, arn, args.environment, now)]
    found.sort(key=lambda row: row.started, reverse=True)
    found = found[: max(args.limit, 1)]
    if not found:
        out.write(
            f"No builds or teardowns of environment {args.environment} among the last {SCAN} "
            f"executions of each state machine of stack {args.stack_name}.\n"
        )
        return 0
    out.write(f"Recent builds and teardowns of environment {args.environment}:\n")
    header = ("STARTED (UTC)", "KIND", "STATUS", "DURATION", "EXECUTION")
    table = [
        (
            f"{row.started.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            row.kind,
            row.status,
            row.duration,
            row.name + (f"  {row.error}" if row.error else ""),
        )
        for row in found
    ]
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(4)]
    for line in [header, *table]:
        cells = [cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True)]
        out.write("  " + "  ".join([*cells, line[4]]) + "\n")
    return 0
