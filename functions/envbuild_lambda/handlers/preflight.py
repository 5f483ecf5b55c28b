"""Preflight: everything the build needs exists and is usable (reads only); then, before anything
is created, the environment record takes the place and the names this build may create."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import SpecInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import preflight, record


@step("Preflight")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SpecInput.model_validate(event)
    clients = get_clients()
    table = get_settings().require_record_table()
    # A move (cluster, namespace, VPC) is refused first: the other checks would only report
    # the old place's resources as conflicts.
    recorded = record.check_place(clients, table, request.spec)
    result = preflight.preflight(
        clients,
        request.spec,
        max_workers=get_settings().max_workers,
        caller=Caller.from_function_arn(context.invoked_function_arn),
        recorded_instances=recorded.names.get("instances", frozenset())
        if recorded
        else frozenset(),
    )
    count("PreflightPassed")
    record.claim(clients, table, request.spec, request.build)
    return result
