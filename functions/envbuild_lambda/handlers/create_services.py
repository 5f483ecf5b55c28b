"""CreateServices: converge the ECS services and their Cloud Map services on the spec.

The one diff (steps/diff.py) decides: missing ECS services are created, attached to their
registries; those envbuild manages for the environment get UpdateService with the fields that
differ (a new deployment when the last one FAILED or the spec asks to redeploy); registries'
DNS records are updated (Cloud Map UpdateService); static instances registered, changed and,
when envbuild registered them and the spec dropped them, deregistered. Services the spec no
longer lists are reported, and with ``prune`` given to the teardown workflow as a removal plan
(the next state starts it). The rows of what changed go to the build's output.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda import pacing
from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import CreateServicesInput, RestoreInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.parallel import pmap
from envbuild_lambda.settings import get_settings
from envbuild_lambda.state import Restore
from envbuild_lambda.steps import (
    autoscaling,
    converge,
    namespace,
    record,
    registries,
    restore,
    services,
    task_definitions,
)


@step("CreateServices")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "previous" in event:  # the failure path's "Restore What Was Updated"
        return _restore(event)
    started_at = pacing.TIMER.now()
    request = CreateServicesInput.model_validate(event)
    settings = get_settings()
    clients = get_clients()
    caller = Caller.from_function_arn(context.invoked_function_arn)
    spec = request.spec
    recorded = record.read(clients, settings.require_record_table(), spec.environment)
    registry_rows, registries_before = registries.registry_changes(
        clients, spec, request.registries, settings.max_workers
    )
    operations = registries.update_registries(
        clients, caller, spec, request.registries, registry_rows, settings.max_workers
    )
    log_rows, retention_before = task_definitions.converge_log_groups(
        clients, spec, request.build, settings.max_workers
    )
    state, service_rows = services.create_or_adopt_services(
        clients,
        caller,
        spec,
        request.registries,
        request.task_definition_by_name(),
        settings.services_poll,
        settings.max_workers,
        request.build,
        settings.service_writes_per_second,
        redeploy=spec.redeploy,
        recorded_instances=recorded.names.get("instances", frozenset())
        if recorded
        else frozenset(),
        started_at=started_at,
        recorded=recorded,
    )
    namespace_row = (
        namespace.converge_namespace_tags(clients, spec, request.namespace)
        if request.namespace is not None
        else None
    )
    definitions = request.task_definition_by_name()
    retagged = {
        row.name: row
        for row in pmap(
            lambda s: task_definitions.converge_revision_tags(
                clients, spec, s, definitions[s.name], request.build
            ),
            spec.services,
            settings.max_workers,
        )
        if row is not None and row.action == "update"
    }
    scaling_rows, scaling_before = autoscaling.converge_all(
        clients, request.spec, settings.max_workers
    )
    count("ScalingChanges", sum(1 for row in scaling_rows if row.action != "unchanged"))
    removed, prune = converge.removals(
        clients,
        caller,
        spec,
        request.namespace.id if request.namespace else None,
        settings.max_workers,
    )
    changes = converge.build_changes(
        clients,
        caller,
        spec,
        request.namespace,
        request.registriesCreated,
        registry_rows,
        service_rows,
        request.task_definition_by_name(),
        state.previous.services if state.previous else {},
        removed,
        prune,
        scaling_rows,
        recorded,
        log_rows,
        namespace_row,
        retagged,
    )
    count("ServicesCreated", sum(1 for action in state.actions.values() if action == "created"))
    count("ServicesUpdated", sum(1 for action in state.actions.values() if action == "updated"))
    count("RegistriesUpdated", len(operations))
    state = state.model_copy(
        update={
            "operations": {**state.operations, **operations},
            "removed": removed,
            "prune": prune.model_dump(mode="json") if prune else None,
            "changes": changes,
            "previous": _worth_restoring(
                state.previous, registries_before, retention_before, scaling_before
            ),
        }
    )
    return state.model_dump(mode="json")


def _worth_restoring(
    previous: Restore | None,
    registries_before: dict[str, list[dict[str, Any]]],
    retention_before: dict[str, int | None],
    scaling_before: dict[str, dict[str, Any] | None],
) -> Restore | None:
    """What this build changed on what existed before it, or None if nothing."""
    merged = (previous or Restore()).model_copy(
        update={
            "registries": registries_before,
            "logGroups": retention_before,
            "scaling": scaling_before,
        }
    )
    return None if merged.is_empty() else merged


def _restore(event: dict[str, Any]) -> dict[str, Any]:
    """A failed build's rollback, first part (steps/restore.py): the same function that made
    the updates puts them back, with the same permissions."""
    request = RestoreInput.model_validate(event)
    restored = restore.restore(
        get_clients(),
        request.spec,
        request.registries,
        request.previous,
        get_settings().max_workers,
        request.build,
    )
    count("ResourcesRestored", len(restored))
    return {"restored": restored}
