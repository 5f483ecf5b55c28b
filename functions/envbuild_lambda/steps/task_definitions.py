"""Fargate task definitions with their awslogs log groups (the workshop's step 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from envbuild_lambda.errors import aws_errors, error_code, map_client_error
from envbuild_lambda.spec import managed_tags
from envbuild_lambda.state import TaskDefinitionRef

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import ContainerDefinitionTypeDef

    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.spec import Service


def ensure_log_group(clients: Clients, name: str, tags: dict[str, str]) -> bool:
    """Create the log group; an existing one is used as it is. True if created."""
    try:
        clients.logs.create_log_group(logGroupName=name, tags=tags)
    except ClientError as error:
        if error_code(error) == "ResourceAlreadyExistsException":
            return False
        raise map_client_error(error, f"CreateLogGroup {name}") from error
    return True


def container_definition(
    service: Service, log_group: str, region: str
) -> ContainerDefinitionTypeDef:
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


def register(
    clients: Clients,
    caller: Caller,
    environment: str,
    service: Service,
    execution_role_arn: str,
    task_role_arn: str,
    build: str | None = None,
) -> TaskDefinitionRef:
    tags = managed_tags(environment, build)
    family = service.family(environment)
    log_group = service.log_group(environment)
    ensure_log_group(clients, log_group, tags)
    with aws_errors(f"RegisterTaskDefinition {family}"):
        registered = clients.ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu=service.cpu,
            memory=service.memory,
            executionRoleArn=execution_role_arn,
            taskRoleArn=task_role_arn,
            containerDefinitions=[container_definition(service, log_group, caller.region)],
            tags=[{"key": key, "value": value} for key, value in tags.items()],
        )["taskDefinition"]
    return TaskDefinitionRef(
        name=service.name,
        taskDefinition=f"{registered['family']}:{registered['revision']}",
        logGroup=log_group,
    )
