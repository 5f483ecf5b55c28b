"""`envbuild unlock ENVIRONMENT`: release an environment's lock whose holder no longer runs.

A build or teardown that is stopped, times out or crashes holds nothing: the next build or
teardown looks its holder up and takes the lock over on its own. This command is for the
operator who wants the lock table clean now, or wants to see who holds an environment:

    envbuild unlock workshop [--stack-name envbuild] [--yes] [--region R] [--profile P] [--endpoint URL]

It refuses while the holder is RUNNING (stop that execution first), asks before releasing on a
terminal, and never prompts without one (pass --yes).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import botocore.exceptions

from envbuild.cli import CliError
from envbuild.stack import aws_errors, connect, output, stack_outputs

#: An execution in one of these still runs its states (DescribeExecution).
LIVE = frozenset({"RUNNING", "PENDING_REDRIVE"})


def holder_status(sfn: Any, execution_arn: str) -> str:
    try:
        return str(sfn.describe_execution(executionArn=execution_arn)["status"])
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ExecutionDoesNotExist", "InvalidArn"):
            return "GONE"
        raise


def confirm(question: str, stdin: TextIO, out: TextIO) -> bool:
    out.write(f"{question} [y/N] ")
    out.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


def unlock(args: argparse.Namespace, out: TextIO, stdin: TextIO | None = None) -> int:
    stdin = stdin if stdin is not None else sys.stdin
    aws = connect(args)
    with aws_errors(aws):
        outputs = stack_outputs(aws.client("cloudformation"), args.stack_name, aws.region)
        table = output(outputs, "EnvironmentLocksTableName", args.stack_name)
        dynamodb, sfn = aws.client("dynamodb"), aws.client("stepfunctions")
        item = dynamodb.get_item(
            TableName=table, Key={"environment": {"S": args.environment}}, ConsistentRead=True
        ).get("Item")
        if not item:
            out.write(f"environment {args.environment} is not locked\n")
            return 0
        holder = item["executionArn"]["S"]
        kind = item.get("kind", {}).get("S", "build or teardown")
        since = datetime.fromtimestamp(int(item.get("acquiredAt", {}).get("N", "0")), UTC)
        status = holder_status(sfn, holder)
        described = f"a {kind} ({holder}, since {since:%Y-%m-%d %H:%M:%S} UTC), which is {status}"
        if status in LIVE:
            raise CliError(
                f"environment {args.environment} is held by {described}: it still runs, so the"
                " lock stays. Stop that execution first (console, or `aws stepfunctions"
                " stop-execution`); a stopped execution holds nothing"
            )
        if not args.yes:
            if not stdin.isatty():
                raise CliError(
                    f"environment {args.environment} is held by {described}; pass --yes to"
                    " release it (no terminal to confirm on)"
                )
            if not confirm(
                f"Release the lock of environment {args.environment}, held by {described}?",
                stdin,
                out,
            ):
                out.write("nothing changed\n")
                return 1
        try:
            dynamodb.delete_item(
                TableName=table,
                Key={"environment": {"S": args.environment}},
                ConditionExpression="executionArn = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}},
            )
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise CliError(
                f"environment {args.environment} was taken by another execution meanwhile:"
                " nothing changed"
            ) from error
    out.write(f"released the lock of environment {args.environment} (was {described})\n")
    return 0
