"""One build or teardown per environment: a DynamoDB conditional write keyed by environment.

The item names the holder (execution ARN, build or teardown, since when). A lock is only as good
as its holder is alive, so on contention the holder is looked up (DescribeExecution): a holder
that is no longer RUNNING (stopped from the console, TIMED_OUT, FAILED without its release, or
gone) holds nothing, and the lock is taken over by a conditional write naming that holder, so two
contenders cannot both take it. The expiry (the state machines' own TimeoutSeconds) stays as a
last resort for a holder that cannot be looked up.

A rollback or prune runs as a child teardown of the build that holds the lock. It runs under
that lock only if the build named it beforehand: the build writes the child's execution name into
the lock item (``child``) just before StartExecution, and the child checks that the lock is held
by the execution that started it (AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID), that this holder
is RUNNING and that ``child`` is its own name. Any other teardown input takes the lock itself.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from envbuild_lambda.errors import (
    EnvironmentBusy,
    InvalidPlan,
    aws_errors,
    error_code,
    map_client_error,
)
from envbuild_lambda.removal import parse_plan

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients

Kind = Literal["build", "teardown"]

#: Execution statuses in which an execution still runs its states (DescribeExecution).
LIVE = frozenset({"RUNNING", "PENDING_REDRIVE"})


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def holder_status(clients: Clients, execution_arn: str) -> str:
    """The holder's execution status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED…), or
    ``GONE`` for an execution Step Functions does not know (deleted, or never an ARN of it)."""
    try:
        answer = clients.stepfunctions.describe_execution(executionArn=execution_arn)
    except ClientError as error:
        if error_code(error) in ("ExecutionDoesNotExist", "InvalidArn"):
            return "GONE"
        raise map_client_error(error, f"DescribeExecution {execution_arn}") from error
    return str(answer["status"])


def _item(clients: Clients, table: str, environment: str) -> dict[str, Any]:
    with aws_errors(f"GetItem {table} (lock {environment})"):
        return dict(
            clients.dynamodb.get_item(
                TableName=table, Key={"environment": {"S": environment}}, ConsistentRead=True
            ).get("Item", {})
        )


def _text(item: dict[str, Any], key: str, default: str = "") -> str:
    return str(item.get(key, {}).get("S", default))


def describe_holder(item: dict[str, Any], now: float) -> str:
    holder = _text(item, "executionArn", "another execution")
    kind = _text(item, "kind", "build or teardown")
    since = _iso(float(item.get("acquiredAt", {}).get("N", now)))
    return f"a {kind} ({holder}, since {since})"


def _put(
    clients: Clients,
    table: str,
    environment: str,
    execution_arn: str,
    kind: Kind,
    now: float,
    ttl_seconds: int,
    condition: str,
    values: dict[str, Any],
) -> None:
    clients.dynamodb.put_item(
        TableName=table,
        Item={
            "environment": {"S": environment},
            "executionArn": {"S": execution_arn},
            "kind": {"S": kind},
            "acquiredAt": {"N": str(int(now))},
            "expiresAt": {"N": str(int(now) + ttl_seconds)},
        },
        ConditionExpression=condition,
        ExpressionAttributeValues=values,
    )


def acquire(
    clients: Clients,
    table: str,
    environment: str,
    execution_arn: str,
    ttl_seconds: int,
    now: float | None = None,
    kind: Kind = "build",
) -> dict[str, Any]:
    """Take the lock for this execution (again, if it already holds it; over from a holder that
    no longer runs); else EnvironmentBusy naming the holder."""
    now = time.time() if now is None else now
    try:
        _put(
            clients,
            table,
            environment,
            execution_arn,
            kind,
            now,
            ttl_seconds,
            "attribute_not_exists(environment) OR expiresAt < :now OR executionArn = :me",
            {":now": {"N": str(int(now))}, ":me": {"S": execution_arn}},
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise map_client_error(error, f"PutItem {table} (lock {environment})") from error
        return _take_over(clients, table, environment, execution_arn, ttl_seconds, now, kind)
    return _held(environment, execution_arn, now + ttl_seconds)


def _held(environment: str, execution_arn: str, expires: float, **extra: str) -> dict[str, Any]:
    return {
        "environment": environment,
        "executionArn": execution_arn,
        "expiresAt": _iso(expires),
        **extra,
    }


def _take_over(
    clients: Clients,
    table: str,
    environment: str,
    execution_arn: str,
    ttl_seconds: int,
    now: float,
    kind: Kind,
) -> dict[str, Any]:
    item = _item(clients, table, environment)
    if not item:  # released between our write and our read: try once more from the start
        return acquire(clients, table, environment, execution_arn, ttl_seconds, now, kind)
    holder = _text(item, "executionArn")
    status = holder_status(clients, holder)
    if status in LIVE:
        raise EnvironmentBusy(
            f"environment {environment} is held by {describe_holder(item, now)}, which is"
            f" {status}; wait until it ends, or stop it (a stopped execution no longer holds"
            " the environment)"
        )
    child = _text(item, "childArn")
    child_status = holder_status(clients, child) if child else "GONE"
    if child_status in LIVE:  # the holder was stopped while its rollback or prune runs
        raise EnvironmentBusy(
            f"environment {environment} is held by {describe_holder(item, now)}, which is"
            f" {status}, and its rollback or prune {child} still runs ({child_status}); wait"
            " until it ends, or stop it"
        )
    try:
        _put(
            clients,
            table,
            environment,
            execution_arn,
            kind,
            now,
            ttl_seconds,
            "executionArn = :holder",
            {":holder": {"S": holder}},
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise map_client_error(error, f"PutItem {table} (lock {environment})") from error
        current = _item(clients, table, environment)
        raise EnvironmentBusy(
            f"environment {environment} was just taken by {describe_holder(current, now)}"
        ) from error
    return _held(
        environment,
        execution_arn,
        now + ttl_seconds,
        tookOverFrom=holder,
        previousHolderStatus=status,
    )


def acquire_for_teardown(
    clients: Clients,
    table: str,
    environment: str,
    execution_arn: str,
    execution_name: str | None,
    started_by: str | None,
    ttl_seconds: int,
    now: float | None = None,
) -> dict[str, Any]:
    """A rollback or prune named by the build holding the lock runs under that lock; any other
    teardown takes the lock itself (EnvironmentBusy while a build or teardown runs)."""
    now = time.time() if now is None else now
    if started_by and execution_name:
        item = _item(clients, table, environment)
        if (
            _text(item, "executionArn") == started_by
            and _text(item, "child") == execution_name
            and holder_status(clients, started_by) in LIVE
        ):
            return {
                "environment": environment,
                "executionArn": started_by,
                "underParent": True,
            }
    return acquire(clients, table, environment, execution_arn, ttl_seconds, now, "teardown")


def teardown_environment(raw: object) -> str:
    """The environment a teardown input names: ``environment`` of a spec, or of a given plan."""
    if not isinstance(raw, dict):
        raise InvalidPlan(
            "a teardown input must be a JSON object (the environment spec, or"
            f' {{"plan": {{...}}}}), got {type(raw).__name__}'
        )
    plan = raw.get("plan")
    if "plan" in raw and not isinstance(plan, dict):
        parse_plan(plan)  # InvalidPlan, saying what it got and what a plan is
    source = plan if isinstance(plan, dict) else raw
    where = "plan.environment" if isinstance(plan, dict) else "environment"
    environment = source.get("environment")
    if not isinstance(environment, str) or not environment:
        raise InvalidPlan(f"{where} is required: the environment to tear down (its lock)")
    return environment


def release(clients: Clients, table: str, environment: str, execution_arn: str) -> bool:
    """Release the lock if this execution holds it; True if it did."""
    try:
        clients.dynamodb.delete_item(
            TableName=table,
            Key={"environment": {"S": environment}},
            ConditionExpression="executionArn = :me",
            ExpressionAttributeValues={":me": {"S": execution_arn}},
        )
    except ClientError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False  # not ours (taken over from us) or already released
        raise map_client_error(error, f"DeleteItem {table} (lock {environment})") from error
    return True
