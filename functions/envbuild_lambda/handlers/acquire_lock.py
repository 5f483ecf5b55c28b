"""AcquireLock: one build or teardown per environment at a time (EnvironmentBusy otherwise).

The build sends ``{environment, executionArn}``; the teardown sends its whole input with its
execution ARN and name (``teardown``), so that a rollback or prune its build named runs under the
build's lock and every other teardown takes the lock (envbuild_lambda.steps.lock)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import get_clients
from envbuild_lambda.handlers.inputs import LockInput, TeardownLockInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import lock


@step("AcquireLock")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    table = settings.require_lock_table()
    if "executionName" not in event:  # the build's Parameters
        build = LockInput.model_validate(event)
        held = lock.acquire(
            get_clients(), table, build.environment, build.executionArn, settings.lock_ttl_seconds
        )
    else:  # the teardown's Parameters (its input may be anything, even null)
        request = TeardownLockInput.model_validate(event)
        raw = request.teardown
        started_by = (
            raw.get("AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID") if isinstance(raw, dict) else None
        )
        held = lock.acquire_for_teardown(
            get_clients(),
            table,
            lock.teardown_environment(raw),
            request.executionArn,
            request.executionName,
            started_by if isinstance(started_by, str) else None,
            settings.lock_ttl_seconds,
        )
    count("LocksAcquired")
    if "tookOverFrom" in held:
        count("LocksTakenOver")
    return held
