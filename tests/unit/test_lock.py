"""The environment lock: one holder at a time, re-entrant for its holder, expiring, released once."""

from __future__ import annotations

import pytest

from envbuild_lambda.aws import Clients
from envbuild_lambda.errors import EnvironmentBusy
from envbuild_lambda.steps import lock

TABLE = "locks"
FIRST = "arn:aws:states:us-east-1:123456789012:execution:sm:first"
SECOND = "arn:aws:states:us-east-1:123456789012:execution:sm:second"


@pytest.fixture
def table(clients: Clients) -> str:
    clients.dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "environment", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "environment", "KeyType": "HASH"}],
    )
    return TABLE


def holder(clients: Clients, environment: str) -> str | None:
    item = clients.dynamodb.get_item(TableName=TABLE, Key={"environment": {"S": environment}}).get(
        "Item"
    )
    return item["executionArn"]["S"] if item else None


def test_a_second_execution_is_refused_with_the_holder_named(clients: Clients, table: str) -> None:
    lock.acquire(clients, table, "workshop", FIRST, 3600, now=1000)

    with pytest.raises(EnvironmentBusy, match=f"being built or torn down by {FIRST}"):
        lock.acquire(clients, table, "workshop", SECOND, 3600, now=1001)
    assert holder(clients, "workshop") == FIRST


def test_other_environments_are_independent(clients: Clients, table: str) -> None:
    lock.acquire(clients, table, "workshop", FIRST, 3600, now=1000)
    lock.acquire(clients, table, "staging", SECOND, 3600, now=1000)
    assert (holder(clients, "workshop"), holder(clients, "staging")) == (FIRST, SECOND)


def test_the_holder_may_take_it_again_after_a_retry(clients: Clients, table: str) -> None:
    lock.acquire(clients, table, "workshop", FIRST, 3600, now=1000)
    held = lock.acquire(clients, table, "workshop", FIRST, 3600, now=1005)
    assert held["expiresAt"] == "1970-01-01T01:16:45Z"


def test_an_expired_lock_is_taken_over(clients: Clients, table: str) -> None:
    lock.acquire(clients, table, "workshop", FIRST, 60, now=1000)
    lock.acquire(clients, table, "workshop", SECOND, 60, now=1061)
    assert holder(clients, "workshop") == SECOND


def test_release_only_frees_the_holders_lock(clients: Clients, table: str) -> None:
    lock.acquire(clients, table, "workshop", FIRST, 3600, now=1000)

    assert lock.release(clients, table, "workshop", SECOND) is False
    assert holder(clients, "workshop") == FIRST
    assert lock.release(clients, table, "workshop", FIRST) is True
    assert holder(clients, "workshop") is None
    assert lock.release(clients, table, "workshop", FIRST) is False  # twice is harmless
