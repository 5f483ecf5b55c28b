"""One build per environment: a DynamoDB conditional write keyed by environment.

The item holds the execution ARN and an expiry, so a lock whose execution died without releasing
it (a state machine timeout) does not block the environment for ever.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from envbuild_lambda.errors import EnvironmentBusy, aws_errors, error_code, map_client_error

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def acquire(
    clients: Clients,
    table: str,
    environment: str,
    execution_arn: str,
    ttl_seconds: int,
    now: float | None = None,
) -> dict[str, Any]:
    """Take the lock for this execution (again, if it already holds it); else EnvironmentBusy."""
    now = time.time() if now is None else now
    expires = int(now) + ttl_seconds
    try:
        clients.dynamodb.put_item(
            TableName=table,
            Item={
                "environment": {"S": environment},
                "executionArn": {"S": execution_arn},
                "acquiredAt": {"N": str(int(now))},
                "expiresAt": {"N": str(expires)},
            },
            ConditionExpression="attribute_not_exists(environment) OR expiresAt < :now OR executionArn = :me",
            ExpressionAttributeValues={":now": {"N": str(int(now))}, ":me": {"S": execution_arn}},
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise map_client_error(error, f"PutItem {table} (lock {environment})") from error
        with aws_errors(f"GetItem {table} (lock {environment})"):
            item = clients.dynamodb.get_item(
                TableName=table, Key={"environment": {"S": environment}}, ConsistentRead=True
            ).get("Item", {})
        holder = item.get("executionArn", {}).get("S", "another execution")
        since = _iso(float(item.get("acquiredAt", {}).get("N", now)))
        until = _iso(float(item.get("expiresAt", {}).get("N", expires)))
        raise EnvironmentBusy(
            f"environment {environment} is being built or torn down by {holder} (since {since});"
            f" wait until it ends (the lock expires at {until} at the latest)"
        ) from error
    return {"environment": environment, "executionArn": execution_arn, "expiresAt": _iso(expires)}


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
            return False  # not ours (expired and taken by another build) or already released
        raise map_client_error(error, f"DeleteItem {table} (lock {environment})") from error
    return True
