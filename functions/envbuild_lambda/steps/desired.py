"""The desired state: every AWS request envbuild makes for a spec, rendered from it alone.

Pure functions (no client, no call): the build sends these requests, and ``steps/diff.py``
compares them with what the account describes. A field envbuild manages is always present in
the rendered request; one the spec leaves unset is ``None`` (so the diff sees a field that was
removed from the spec), and ``sent`` strips those before the request goes to AWS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envbuild_lambda.aws import Caller
    from envbuild_lambda.spec import EnvironmentSpec, Service

#: ECS's deployment circuit breaker with rollback on every service envbuild creates or updates:
#: a deployment whose tasks keep failing to start is marked FAILED and ECS rolls the service
#: back to the deployment that last completed (Check Services then fails with DeploymentFailed).
#: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html
CIRCUIT_BREAKER: dict[str, Any] = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}


def sent(request: dict[str, Any]) -> dict[str, Any]:
    """The request as AWS gets it: the unset (None) fields left out, at every depth."""
    out: dict[str, Any] = {}
    for key, value in request.items():
        if value is None:
            continue
        if isinstance(value, dict):
            out[key] = sent(value)
        elif isinstance(value, list):
            out[key] = [sent(item) if isinstance(item, dict) else item for item in value]
        else:
            out[key] = value
    return out


def registry_arn(caller: Caller, registry_id: str) -> str:
    return caller.arn("servicediscovery", f"service/{registry_id}")


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
            "DnsRecords": [{"Type": "A", "TTL": service.dnsTtl}],
        },
        "HealthCheckCustomConfig": {"FailureThreshold": 1},
    }


# ---------------------------------------------------------------------------------------------
# Task definition


def container_definition(service: Service, log_group: str, region: str) -> dict[str, Any]:
    return {
        "name": service.name,
        "image": service.image,
        "essential": True,
        "portMappings": [{"containerPort": service.port, "protocol": "tcp"}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": "ecs",
            },
        },
        "environment": [
            {"name": key, "value": value} for key, value in sorted(service.environment.items())
        ],
    }


def task_definition(
    caller: Caller,
    environment: str,
    service: Service,
    execution_role_arn: str,
    task_role_arn: str,
) -> dict[str, Any]:
    """The RegisterTaskDefinition request for a service (without tags): what is compared."""
    return {
        "family": service.family(environment),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": service.cpu,
        "memory": service.memory,
        "executionRoleArn": execution_role_arn,
        "taskRoleArn": task_role_arn,
        "containerDefinitions": [
            container_definition(service, service.log_group(environment), caller.region)
        ],
    }


# ---------------------------------------------------------------------------------------------
# ECS service


def ecs_service(
    caller: Caller,
    spec: EnvironmentSpec,
    service: Service,
    registry_id: str,
    task_definition: str,
) -> dict[str, Any]:
    """The fields of the ECS service that UpdateService can change (and CreateService sets):
    what the diff compares with DescribeServices. CreateService adds its own (``create_only``)."""
    return {
        "taskDefinition": task_definition,
        "desiredCount": service.desiredCount,
        "deploymentConfiguration": CIRCUIT_BREAKER,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": spec.network.subnets,
                "securityGroups": spec.network.securityGroups,
                "assignPublicIp": spec.network.assignPublicIp,
            }
        },
        "serviceRegistries": [{"registryArn": registry_arn(caller, registry_id)}],
    }


def create_only(spec: EnvironmentSpec, service: Service) -> dict[str, Any]:
    """The CreateService fields that UpdateService cannot change (besides name, token, tags)."""
    return {
        "cluster": spec.cluster,
        "serviceName": service.ecs_service_name,
        "launchType": "FARGATE",
        "propagateTags": "SERVICE",
        "enableECSManagedTags": True,
    }
