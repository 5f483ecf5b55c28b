"""CreateServices: converge the ECS services and their Cloud Map services on the spec.

Missing ECS services are created, attached to their registries; those envbuild manages for the
environment are rolled to the spec's task definition and desired count (UpdateService), their
registries' A record TTL updated (Cloud Map UpdateService); existing ones it did not create are
adopted as they are. Services the spec no longer lists are reported, and with ``prune`` given to
the teardown workflow as a removal plan (the next state starts it).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from envbuild_lambda.aws import Caller, get_clients
from envbuild_lambda.handlers.inputs import CreateServicesInput
from envbuild_lambda.observability import count, step
from envbuild_lambda.settings import get_settings
from envbuild_lambda.steps import autoscaling, converge, registries, services


@step("CreateServices")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CreateServicesInput.model_validate(event)
    settings = get_settings()
    clients = get_clients()
    caller = Caller.from_function_arn(context.invoked_function_arn)
    ttls = registries.ttl_changes(clients, request.spec, request.registries, settings.max_workers)
    operations = registries.update_ttls(
        clients,
        request.registries,
        {name: new for name, (_old, new) in ttls.items()},
        settings.max_workers,
    )
    state = services.create_or_adopt_services(
        clients,
        caller,
        request.spec,
        request.registries,
        request.task_definition_by_name(),
        settings.services_poll,
        settings.max_workers,
        request.build,
        settings.service_writes_per_second,
    )
    scaled = autoscaling.converge_all(clients, request.spec, settings.max_workers)
    count("ScalingChanges", len(scaled))
    removed, prune = converge.removals(
        clients,
        caller,
        request.spec,
        request.namespace.id if request.namespace else None,
        settings.max_workers,
    )
    count("ServicesCreated", sum(1 for action in state.actions.values() if action == "created"))
    count("ServicesUpdated", sum(1 for action in state.actions.values() if action == "updated"))
    count("RegistriesUpdated", len(operations))
    state = state.model_copy(
        update={
            "operations": {**state.operations, **operations},
            "removed": removed,
            "prune": prune.model_dump(mode="json") if prune else None,
        }
    )
    return state.model_dump(mode="json")
