"""The desired state: every AWS request envbuild makes for a spec, rendered from it alone.

Pure functions (no client, no call): the build sends these requests, and ``steps/diff.py``
compares them with what the account describes. A field envbuild manages is always present in
the rendered request; one the spec leaves unset is ``None`` (so the diff sees a field that was
removed from the spec), and ``sent`` strips those before the request goes to AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from envbuild_lambda.spec import managed_tags

if TYPE_CHECKING:
    from envbuild_lambda.aws import Caller
    from envbuild_lambda.spec import EnvironmentSpec, Service, Sidecar, StaticInstance

#: ECS's deployment circuit breaker with rollback on every service envbuild creates or updates:
#: a deployment whose tasks keep failing to start is marked FAILED and ECS rolls the service
#: back to the deployment that last completed (Check Services then fails with DeploymentFailed).
#: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html
CIRCUIT_BREAKER: dict[str, Any] = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}

#: What ECS fills in when a request leaves them out (DescribeServices / DescribeTaskDefinition
#: then return these): rendered as they are, never as None, or they would differ forever.
DEFAULT_MINIMUM_HEALTHY_PERCENT = 100
DEFAULT_MAXIMUM_PERCENT = 200
DEFAULT_CONTAINER_CPU = 0

#: Application Auto Scaling of an ECS service's desired count.
SCALABLE_DIMENSION = "ecs:service:DesiredCount"
CPU_METRIC = "ECSServiceAverageCPUUtilization"
MEMORY_METRIC = "ECSServiceAverageMemoryUtilization"


class Reset:
    """A removed ``overrides.service`` field: UpdateService sends ``value`` (ECS's default)
    to reset it; the diff counts it as set while the service describes another value than
    ``value`` or nothing."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reset) and other.value == self.value

    def __hash__(self) -> int:
        return hash(repr(self.value))

    def __repr__(self) -> str:
        return f"Reset({self.value!r})"


#: The ``overrides.service`` fields ECS can reset, and the UpdateService value that does it
#: ("pass an empty list" / 0 / disabled: the UpdateService API reference). Any other removed
#: field of overrides.service stays as it is (``cannot_unset``).
SERVICE_RESETS: dict[str, Any] = {
    "healthCheckGracePeriodSeconds": 0,
    "loadBalancers": [],
    "placementConstraints": [],
    "placementStrategy": [],
    "serviceConnectConfiguration": {"enabled": False},
    "volumeConfigurations": [],
    "vpcLatticeConfigurations": [],
}


def sent(request: dict[str, Any]) -> dict[str, Any]:
    """The request as AWS gets it: the unset (None) fields left out, at every depth; a Reset
    field as its value."""
    out: dict[str, Any] = {}
    for key, value in request.items():
        if value is None:
            continue
        if isinstance(value, Reset):
            out[key] = value.value
        elif isinstance(value, dict):
            out[key] = sent(value)
        elif isinstance(value, list):
            out[key] = [sent(item) if isinstance(item, dict) else item for item in value]
        else:
            out[key] = value
    return out


def registry_arn(caller: Caller, registry_id: str) -> str:
    return caller.arn("servicediscovery", f"service/{registry_id}")


# ---------------------------------------------------------------------------------------------
# Tags and log retention (issue 17: the spec's tags beside envbuild's own)


def tags(
    spec: EnvironmentSpec, service: Service | None, build: str | None = None
) -> dict[str, str]:
    """The tags of a resource envbuild creates for ``service`` (None: for the environment, e.g.
    the namespace): the spec's (the service's over the top-level ones), then envbuild's own."""
    own = service.effective_tags(spec.tags) if service is not None else dict(spec.tags)
    return {**own, **managed_tags(spec.environment, build)}


def ecs_tags(tag_map: dict[str, str]) -> list[Any]:
    """ECS (and CloudWatch Logs' TagResource) form: [{key, value}]."""
    return [{"key": key, "value": value} for key, value in tag_map.items()]


def cloud_map_tags(tag_map: dict[str, str]) -> list[Any]:
    """Cloud Map and Application Auto Scaling form: [{Key, Value}] (Auto Scaling: a map)."""
    return [{"Key": key, "Value": value} for key, value in tag_map.items()]


def log_retention(spec: EnvironmentSpec, service: Service) -> int | None:
    """The retention of the service's log group in days (None: never expire): what
    DescribeLogGroups returns as retentionInDays (absent when it never expires)."""
    return service.effective_log_retention(spec.logRetentionDays)


# ---------------------------------------------------------------------------------------------
# Cloud Map service (registry)


def registry(spec: EnvironmentSpec, service: Service) -> dict[str, Any]:
    """The fields of Cloud Map CreateService that describe the registry (GetService returns
    them; UpdateService changes DnsConfig.DnsRecords)."""
    return {
        "Name": service.name,
        "Description": f"{service.name} service registry (envbuild {spec.environment})",
        "DnsConfig": {
            "RoutingPolicy": "MULTIVALUE",
            "DnsRecords": dns_records(service),
        },
        "HealthCheckCustomConfig": {"FailureThreshold": 1},
    }


def dns_records(service: Service) -> list[Any]:
    """A, and SRV when the spec's dnsRecords has it (the same TTL): Cloud Map's DnsRecords.
    With SRV, ECS registers each task with its port (``ecs_service``'s serviceRegistries)."""
    order = ("A", "SRV")
    return [{"Type": kind, "TTL": service.dnsTtl} for kind in order if kind in service.dnsRecords]


def instance_attributes(service: Service, instance: StaticInstance) -> dict[str, str]:
    """RegisterInstance's attributes of a static instance: with an SRV record Cloud Map needs
    the port to answer with (AWS_INSTANCE_PORT), the service's port."""
    attributes = instance.cloud_map_attributes()
    if "SRV" in service.dnsRecords:
        attributes = {**attributes, "AWS_INSTANCE_PORT": str(service.port)}
    return attributes


# ---------------------------------------------------------------------------------------------
# Task definition


def _log_configuration(log_group: str, region: str) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": log_group,
            "awslogs-region": region,
            "awslogs-stream-prefix": "ecs",
        },
    }


def _environment(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": key, "value": value} for key, value in sorted(values.items())]


def _secrets(values: dict[str, str]) -> list[dict[str, str]]:
    """The container's secrets: names and ARNs only (ECS reads the values at task start)."""
    return [{"name": key, "valueFrom": arn} for key, arn in sorted(values.items())]


def _depends_on(service_or_sidecar: Service | Sidecar) -> list[dict[str, str]] | None:
    items = [
        {"containerName": d.container, "condition": d.condition}
        for d in service_or_sidecar.dependsOn
    ]
    return items or None


def _health_check(service: Service) -> dict[str, Any] | None:
    check = service.healthCheck
    if check is None:
        return None
    return {
        "command": check.command,
        "interval": check.interval,
        "timeout": check.timeout,
        "retries": check.retries,
        "startPeriod": check.startPeriod,
    }


def container_definition(
    service: Service, log_group: str, region: str, removed: Iterable[str] = ()
) -> dict[str, Any]:
    """The service's own container; ``overrides.container`` merged last; an override key a
    build applied that the spec dropped (``removed``) rendered as None (a revision without it)."""
    container = {
        "name": service.name,
        "image": service.image,
        "essential": True,
        "portMappings": [{"containerPort": service.port, "protocol": "tcp"}],
        "logConfiguration": _log_configuration(log_group, region),
        "environment": _environment(service.environment),
        "secrets": _secrets(service.secrets),
        "command": service.command or None,
        "entryPoint": service.entryPoint or None,
        "healthCheck": _health_check(service),
        "dependsOn": _depends_on(service),
    }
    return {
        **{key: None for key in removed if key not in container},
        **container,
        **service.overrides.container,
    }


def sidecar_definition(sidecar: Sidecar, log_group: str, region: str) -> dict[str, Any]:
    """A sidecar's container: its logs in the service's log group (stream ecs/<name>/<task>).
    ECS describes a container without cpu as cpu 0: rendered so."""
    return {
        "name": sidecar.name,
        "image": sidecar.image,
        "essential": sidecar.essential,
        "portMappings": (
            [{"containerPort": sidecar.port, "protocol": "tcp"}] if sidecar.port else None
        ),
        "logConfiguration": _log_configuration(log_group, region),
        "environment": _environment(sidecar.environment),
        "secrets": _secrets(sidecar.secrets),
        "command": sidecar.command or None,
        "entryPoint": sidecar.entryPoint or None,
        "cpu": sidecar.cpu if sidecar.cpu is not None else DEFAULT_CONTAINER_CPU,
        "memory": sidecar.memory,
        "dependsOn": _depends_on(sidecar),
    }


def task_definition(
    caller: Caller,
    environment: str,
    service: Service,
    execution_role_arn: str,
    task_role_arn: str,
    removed_overrides: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """The RegisterTaskDefinition request for a service (without tags): what is compared.
    runtimePlatform only for ARM64 (a revision registered without one runs X86_64, and every
    revision registered before the field existed stays unchanged); ``overrides.taskDefinition``
    merged last. ``removed_overrides`` (record.removed_overrides: the override keys a build
    applied that the spec dropped) are rendered as None: the next revision lacks them."""
    removed = removed_overrides or {}
    log_group = service.log_group(environment)
    request = {
        "family": service.family(environment),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": service.cpu,
        "memory": service.memory,
        "executionRoleArn": execution_role_arn,
        "taskRoleArn": task_role_arn,
        "runtimePlatform": (
            {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
            if service.cpuArchitecture == "ARM64"
            else None
        ),
        "containerDefinitions": [
            container_definition(service, log_group, caller.region, removed.get("container", ())),
            *(sidecar_definition(s, log_group, caller.region) for s in service.sidecars),
        ],
    }
    return {
        **{key: None for key in removed.get("taskDefinition", ()) if key not in request},
        **request,
        **service.overrides.taskDefinition,
    }


# ---------------------------------------------------------------------------------------------
# ECS service


def ecs_service(
    caller: Caller,
    spec: EnvironmentSpec,
    service: Service,
    registry_id: str,
    task_definition: str,
    removed_overrides: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """The fields of the ECS service that UpdateService can change (and CreateService sets):
    what the diff compares with DescribeServices. CreateService adds its own (``create_only``).

    With ``autoscaling`` desiredCount is not here (the scaler owns it; CreateService sets the
    initial count, ``create_only``), so the generic diff never compares or updates it.
    ``overrides.service`` fields UpdateService takes are merged last (the others: create_only);
    one a build applied that the spec dropped (``removed_overrides``) is rendered as its
    ``Reset`` when ECS can reset it (SERVICE_RESETS), else not at all (``cannot_unset``)."""
    network = service.effective_network(spec.network)
    deployment = service.deployment
    request: dict[str, Any] = {
        "taskDefinition": task_definition,
        "desiredCount": service.desiredCount,
        "deploymentConfiguration": {
            **CIRCUIT_BREAKER,
            "minimumHealthyPercent": (
                deployment.minimumHealthyPercent if deployment else DEFAULT_MINIMUM_HEALTHY_PERCENT
            ),
            "maximumPercent": (
                deployment.maximumPercent if deployment else DEFAULT_MAXIMUM_PERCENT
            ),
        },
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": network.subnets,
                "securityGroups": network.securityGroups,
                "assignPublicIp": network.assignPublicIp,
            }
        },
        "serviceRegistries": [service_registry(caller, service, registry_id)],
        "capacityProviderStrategy": capacity_provider_strategy(service),
        "platformVersion": service.platformVersion,
        "enableExecuteCommand": service.enableExecuteCommand,
    }
    if service.autoscaling is not None:
        del request["desiredCount"]
    if service.overrides.service:
        updatable = _update_service_members()
        request.update({k: v for k, v in service.overrides.service.items() if k in updatable})
    for key in (removed_overrides or {}).get("service", ()):
        if key in SERVICE_RESETS and key not in request:
            request[key] = Reset(SERVICE_RESETS[key])
    return request


def cannot_unset(removed_overrides: Mapping[str, Iterable[str]] | None) -> list[str]:
    """The removed ``overrides.service`` fields ECS cannot reset (they stay as they are)."""
    return sorted(
        key for key in (removed_overrides or {}).get("service", ()) if key not in SERVICE_RESETS
    )


def service_registry(caller: Caller, service: Service, registry_id: str) -> dict[str, Any]:
    """The ECS service's registry entry: with an SRV record it names the container and port
    (ECS then registers each task with AWS_INSTANCE_PORT)."""
    srv = "SRV" in service.dnsRecords
    # None without SRV (not sent): a registry entry that names them is then a difference.
    return {
        "registryArn": registry_arn(caller, registry_id),
        "containerName": service.name if srv else None,
        "containerPort": service.port if srv else None,
    }


def capacity_provider_strategy(service: Service) -> list[dict[str, Any]] | None:
    """The capacity provider strategy, or None (the FARGATE launch type, ``create_only``)."""
    if service.capacityProviders is None:
        return None
    return [
        {"capacityProvider": item.capacityProvider, "weight": item.weight, "base": item.base}
        for item in service.capacityProviders
    ]


def create_only(spec: EnvironmentSpec, service: Service) -> dict[str, Any]:
    """The CreateService fields that UpdateService cannot change (besides name, token, tags):
    launchType unless a capacity provider strategy is set, the initial desiredCount when the
    scaler owns it, and the ``overrides.service`` fields only CreateService takes."""
    request: dict[str, Any] = {
        "cluster": spec.cluster,
        "serviceName": service.ecs_service_name,
        "launchType": "FARGATE" if service.capacityProviders is None else None,
        "propagateTags": "SERVICE",
        "enableECSManagedTags": True,
    }
    if service.autoscaling is not None:
        request["desiredCount"] = service.desiredCount
    if service.overrides.service:
        updatable = _update_service_members()
        request.update({k: v for k, v in service.overrides.service.items() if k not in updatable})
    return request


def _update_service_members() -> frozenset[str]:
    from envbuild_lambda.overrides import update_service_members

    return update_service_members()


# ---------------------------------------------------------------------------------------------
# Application Auto Scaling (after the ECS service exists; deregistered before it is deleted)


def scalable_resource_id(spec: EnvironmentSpec, service: Service) -> str:
    return f"service/{spec.cluster_name}/{service.ecs_service_name}"


def scalable_target(spec: EnvironmentSpec, service: Service) -> dict[str, Any] | None:
    """RegisterScalableTarget's request (what DescribeScalableTargets returns), or None: the
    service has no autoscaling (a target envbuild registered is then deregistered)."""
    scaling = service.autoscaling
    if scaling is None:
        return None
    return {
        "ServiceNamespace": "ecs",
        "ResourceId": scalable_resource_id(spec, service),
        "ScalableDimension": SCALABLE_DIMENSION,
        "MinCapacity": scaling.minCount,
        "MaxCapacity": scaling.maxCount,
    }


def scaling_policies(spec: EnvironmentSpec, service: Service) -> list[dict[str, Any]]:
    """PutScalingPolicy's requests: a target-tracking policy on CPU, and on memory when set
    (named <ecs service>-cpu / -memory; DescribeScalingPolicies returns them by PolicyName)."""
    scaling = service.autoscaling
    if scaling is None:
        return []
    targets = [("cpu", CPU_METRIC, scaling.targetCpuPercent)]
    if scaling.targetMemoryPercent is not None:
        targets.append(("memory", MEMORY_METRIC, scaling.targetMemoryPercent))
    return [
        {
            "PolicyName": f"{service.ecs_service_name}-{name}",
            "ServiceNamespace": "ecs",
            "ResourceId": scalable_resource_id(spec, service),
            "ScalableDimension": SCALABLE_DIMENSION,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": float(value),
                "PredefinedMetricSpecification": {"PredefinedMetricType": metric},
            },
        }
        for name, metric, value in targets
    ]
