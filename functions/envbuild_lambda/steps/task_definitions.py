"""Fargate task definitions with their awslogs log groups (the workshop's step 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from envbuild_lambda.errors import aws_errors, error_code, map_client_error
from envbuild_lambda.pacing import RateLimiter, paced
from envbuild_lambda.parallel import pmap
from envbuild_lambda.spec import managed_tags
from envbuild_lambda.state import TaskDefinitionRef
from envbuild_lambda.steps import desired as desired_steps
from envbuild_lambda.steps import diff

if TYPE_CHECKING:
    from collections.abc import Sequence

    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.spec import Service


def ensure_log_group(clients: Clients, name: str, tags: dict[str, str]) -> bool:
    """Create the log group; an existing one is used as it is. True if created.

    Looked up first, so that a re-run makes no mutating call; "already exists" is still handled
    (a concurrent or retried creation)."""
    with aws_errors(f"DescribeLogGroups {name}"):
        found = clients.logs.describe_log_groups(logGroupNamePrefix=name, limit=1)["logGroups"]
    if found and found[0]["logGroupName"] == name:
        return False
    try:
        clients.logs.create_log_group(logGroupName=name, tags=tags)
    except ClientError as error:
        if error_code(error) == "ResourceAlreadyExistsException":
            return False
        raise map_client_error(error, f"CreateLogGroup {name}") from error
    return True


def latest_revision(clients: Clients, family: str) -> dict[str, Any] | None:
    """The family's latest ACTIVE revision (DescribeTaskDefinition of a family name), or None."""
    try:
        current = clients.ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    except ClientError as error:
        if error_code(error) in ("ClientException", "InvalidParameterException"):  # no such family
            return None
        raise map_client_error(error, f"DescribeTaskDefinition {family}") from error
    return dict(current) if current.get("status") == "ACTIVE" else None


def register(
    clients: Clients,
    caller: Caller,
    environment: str,
    service: Service,
    execution_role_arn: str,
    task_role_arn: str,
    build: str | None = None,
    pace: RateLimiter | None = None,
) -> TaskDefinitionRef:
    """Register the service's task definition, unless its latest revision already is the desired
    one (a retry after a lost response, or a re-run): no duplicate revisions. A spec change
    (image, environment, cpu/memory, roles, port) registers a new revision, which CreateServices
    then rolls the ECS service to."""
    tags = managed_tags(environment, build)
    family = service.family(environment)
    log_group = service.log_group(environment)
    ensure_log_group(clients, log_group, tags)
    desired = desired_steps.task_definition(
        caller, environment, service, execution_role_arn, task_role_arn
    )
    change = diff.task_definition_change(
        service, environment, desired, latest_revision(clients, family)
    )
    if change.action == "unchanged":
        return TaskDefinitionRef(name=service.name, taskDefinition=change.name, logGroup=log_group)

    def register_revision() -> dict[str, Any]:
        with aws_errors(f"RegisterTaskDefinition {family}"):
            return dict(
                clients.ecs_once.register_task_definition(
                    **desired_steps.sent(desired),
                    tags=[{"key": key, "value": value} for key, value in tags.items()],
                )["taskDefinition"]
            )

    registered = paced(pace, register_revision)
    return TaskDefinitionRef(
        name=service.name,
        taskDefinition=f"{registered['family']}:{registered['revision']}",
        logGroup=log_group,
    )


def register_all(
    clients: Clients,
    caller: Caller,
    environment: str,
    services: Sequence[Service],
    execution_role_arn: str,
    task_role_arn: str,
    build: str | None,
    max_workers: int,
    writes_per_second: int = 1,
) -> list[TaskDefinitionRef]:
    """``register`` for a batch of services, in spec order. RegisterTaskDefinition is paced at
    ``writes_per_second`` (the ECS task-definition-modification quota, account-wide); the log
    group and revision look-ups run ``max_workers`` at a time."""
    pace = RateLimiter(writes_per_second, burst=writes_per_second)
    return pmap(
        lambda service: register(
            clients, caller, environment, service, execution_role_arn, task_role_arn, build, pace
        ),
        services,
        max_workers,
    )
