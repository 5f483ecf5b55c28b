"""``overrides``: any other field of RegisterTaskDefinition, of the service's ContainerDefinition
or of CreateService, merged last into what envbuild renders (steps/desired.py).

Validated before anything is created against botocore's own ECS input shapes (the service model
the SDK ships, ``botocore.validate.ParamValidator``): an unknown field or a value of the wrong
type is an error naming the field path. The fields envbuild manages itself are refused, with the
spec field that sets them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

#: The fields envbuild renders itself, per part, and the spec field to use instead.
MANAGED: dict[str, dict[str, str]] = {
    "taskDefinition": {
        "family": "services[].name (the family is <environment>_<name>)",
        "containerDefinitions": "overrides.container and sidecars",
        "networkMode": "nothing (envbuild runs awsvpc tasks on Fargate)",
        "requiresCompatibilities": "nothing (envbuild runs Fargate tasks)",
        "cpu": "cpu",
        "memory": "memory",
        "executionRoleArn": "executionRoleArn",
        "taskRoleArn": "taskRoleArn",
        "runtimePlatform": "cpuArchitecture",
        "tags": "tags",
    },
    "container": {
        "name": "services[].name",
        "image": "image",
        "portMappings": "port",
        "essential": "nothing (the service's container is always essential)",
        "environment": "environment",
        "secrets": "secrets",
        "command": "command",
        "entryPoint": "entryPoint",
        "healthCheck": "healthCheck",
        "dependsOn": "dependsOn",
        "logConfiguration": "logRetentionDays (envbuild sends the logs to its log group)",
    },
    "service": {
        "cluster": "cluster",
        "serviceName": "services[].name (the ECS service is <name>-service)",
        "service": "services[].name",
        "taskDefinition": "the service's fields (envbuild registers the task definition)",
        "desiredCount": "desiredCount (or autoscaling)",
        "clientToken": "nothing (envbuild makes its own idempotency token)",
        "launchType": "capacityProviders",
        "capacityProviderStrategy": "capacityProviders",
        "platformVersion": "platformVersion",
        "networkConfiguration": "network",
        "serviceRegistries": "dnsRecords (envbuild attaches the service's registry)",
        "deploymentConfiguration": "deployment",
        "tags": "tags",
        "propagateTags": "tags (envbuild propagates the service's tags)",
        "enableECSManagedTags": "nothing (envbuild enables ECS managed tags)",
        "enableExecuteCommand": "enableExecuteCommand",
        "forceNewDeployment": "nothing (envbuild deploys when the spec changes)",
    },
}

#: The botocore input each part is validated as, with the managed members it needs filled in.
_OPERATION = {
    "taskDefinition": "RegisterTaskDefinition",
    "container": "RegisterTaskDefinition",
    "service": "CreateService",
}


@cache
def _input_shape(operation: str) -> Any:
    import botocore.session  # only a spec with overrides pays for loading the ECS model

    return (
        botocore.session.get_session()
        .get_service_model("ecs")
        .operation_model(operation)
        .input_shape
    )


@cache
def update_service_members() -> frozenset[str]:
    """The fields UpdateService takes (an override of one of them converges on a re-run; the
    others only CreateService takes)."""
    return frozenset(_input_shape("UpdateService").members)


def _request(part: str, value: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The request the part is validated in, and the prefix of its own fields in error paths."""
    if part == "taskDefinition":
        return {"family": "f", "containerDefinitions": [], **value}, ""
    if part == "container":
        return {"family": "f", "containerDefinitions": [value]}, ".containerDefinitions[0]"
    return {"serviceName": "s", **value}, ""


def problems(part: str, value: dict[str, Any]) -> list[tuple[str, str]]:
    """(path below ``overrides.<part>``, message) for each problem of one part of overrides."""
    found: list[tuple[str, str]] = []
    managed = MANAGED[part]
    for key in value:
        if key in managed:
            found.append((key, f"is managed by envbuild: use {managed[key]}"))
    rest = {k: v for k, v in value.items() if k not in managed}
    if not rest:
        return found
    from botocore.validate import ParamValidator

    request, prefix = _request(part, rest)
    report = ParamValidator().validate(request, _input_shape(_OPERATION[part]))
    for kind, name, detail in report._errors:
        where = str(name)
        if prefix and not where.startswith(prefix):
            continue
        where = where[len(prefix) :].lstrip(".")
        if kind == "unknown field":
            nested = bool(where)
            shown = [n for n in detail["valid_names"] if nested or n not in managed]
            where = f"{where}.{detail['unknown_param']}" if where else str(detail["unknown_param"])
            message = f"is not a field of {_what(part, where)} (allowed: {', '.join(shown[:40])})"
        elif kind == "invalid type":
            types = ", ".join(
                t.removeprefix("<class '").removesuffix("'>") for t in detail["valid_types"]
            )
            message = f"must be of type {types}"
        elif kind == "missing required field":
            where = f"{where}.{detail['required_name']}" if where else str(detail["required_name"])
            message = "is required by ECS"
        elif kind == "invalid range":
            message = f"must be at least {detail['min_allowed']}"
        elif kind == "invalid length":
            message = f"must have a length of at least {detail['min_allowed']}"
        elif kind == "invalid enum":
            message = f"must be one of {', '.join(map(str, detail['valid_values']))}"
        else:
            message = kind
        found.append((where, message))
    return found


def _what(part: str, where: str) -> str:
    if "." in where or "[" in where:
        return "that ECS object"
    return {
        "taskDefinition": "RegisterTaskDefinition",
        "container": "a ContainerDefinition",
        "service": "CreateService",
    }[part]
