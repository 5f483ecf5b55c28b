"""Fargate task definitions and their /ecs/<family> log groups (functions/envbuild_lambda/steps/task_definitions.py)."""

from __future__ import annotations

from typing import Any

import pytest

from envbuild_lambda.aws import Caller, Clients
from envbuild_lambda.errors import AccessDenied
from envbuild_lambda.spec import EnvironmentSpec
from envbuild_lambda.steps import desired, diff, task_definitions

from .conftest import ACCOUNT, Override, client_error

EXEC_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecsTaskRole"
MANAGED = {"envbuild:environment": "workshop", "envbuild:managed": "true"}


def log_groups(clients: Clients, prefix: str) -> list[dict[str, Any]]:
    return clients.logs.describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]


def test_register_creates_the_log_group_and_the_fargate_task_definition(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    web = spec.service("web")
    ref = task_definitions.register(clients, caller, "workshop", web, EXEC_ROLE, TASK_ROLE)
    assert ref.model_dump() == {
        "name": "web",
        "taskDefinition": "workshop_web:1",
        "logGroup": "/ecs/workshop_web",
    }

    (group,) = log_groups(clients, "/ecs/workshop_web")
    assert group["logGroupName"] == "/ecs/workshop_web"
    assert clients.logs.list_tags_log_group(logGroupName="/ecs/workshop_web")["tags"] == MANAGED

    described = clients.ecs.describe_task_definition(
        taskDefinition="workshop_web:1", include=["TAGS"]
    )
    definition = described["taskDefinition"]
    assert definition["family"] == "workshop_web"
    assert definition["networkMode"] == "awsvpc"
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert (definition["cpu"], definition["memory"]) == ("256", "512")
    assert definition["executionRoleArn"] == EXEC_ROLE
    assert definition["taskRoleArn"] == TASK_ROLE
    (container,) = definition["containerDefinitions"]
    assert container["name"] == "web"
    assert container["image"] == "nginx:latest"
    assert container["essential"] is True
    assert [(p["containerPort"], p["protocol"]) for p in container["portMappings"]] == [(80, "tcp")]
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/ecs/workshop_web",
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "ecs",
        },
    }
    assert container["environment"] == [
        {"name": "API_ENDPOINT", "value": "http://api.workshop.local"}
    ]
    assert {t["key"]: t["value"] for t in described["tags"]} == MANAGED


def test_environment_variables_are_sorted_by_name(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    service = spec.service("api").model_copy(
        update={"environment": {"ZED": "z", "ALPHA": "a", "MID": "m"}}
    )
    task_definitions.register(clients, caller, "workshop", service, EXEC_ROLE, TASK_ROLE)
    (container,) = clients.ecs.describe_task_definition(taskDefinition="workshop_api")[
        "taskDefinition"
    ]["containerDefinitions"]
    assert [e["name"] for e in container["environment"]] == ["ALPHA", "MID", "ZED"]


def test_a_service_without_environment_gets_an_empty_environment(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    task_definitions.register(clients, caller, "workshop", spec.service("db"), EXEC_ROLE, TASK_ROLE)
    definition = clients.ecs.describe_task_definition(taskDefinition="workshop_db")[
        "taskDefinition"
    ]
    (container,) = definition["containerDefinitions"]
    assert container.get("environment", []) == []
    assert [p["containerPort"] for p in container["portMappings"]] == [6379]


def test_cpu_and_memory_of_the_spec_are_the_task_size(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    service = spec.service("web").model_copy(update={"cpu": "1024", "memory": "8192"})
    task_definitions.register(clients, caller, "workshop", service, EXEC_ROLE, TASK_ROLE)
    definition = clients.ecs.describe_task_definition(taskDefinition="workshop_web")[
        "taskDefinition"
    ]
    assert (definition["cpu"], definition["memory"]) == ("1024", "8192")


def test_an_existing_log_group_is_kept_as_it_is(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    clients.logs.create_log_group(logGroupName="/ecs/workshop_web", tags={"owner": "someone"})
    clients.logs.put_retention_policy(logGroupName="/ecs/workshop_web", retentionInDays=7)
    ref = task_definitions.register(
        clients, caller, "workshop", spec.service("web"), EXEC_ROLE, TASK_ROLE
    )
    assert ref.logGroup == "/ecs/workshop_web"
    (group,) = log_groups(clients, "/ecs/workshop_web")
    assert group["retentionInDays"] == 7
    assert clients.logs.list_tags_log_group(logGroupName="/ecs/workshop_web")["tags"] == {
        "owner": "someone"
    }


def test_ensure_log_group_says_whether_it_created_the_group(clients: Clients) -> None:
    assert task_definitions.ensure_log_group(clients, "/ecs/x", MANAGED) is True
    assert task_definitions.ensure_log_group(clients, "/ecs/x", MANAGED) is False
    assert len(log_groups(clients, "/ecs/x")) == 1


def test_registering_the_same_definition_again_reuses_the_revision(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    web = spec.service("web")
    task_definitions.register(clients, caller, "workshop", web, EXEC_ROLE, TASK_ROLE)
    again = task_definitions.register(clients, caller, "workshop", web, EXEC_ROLE, TASK_ROLE)
    assert again.taskDefinition == "workshop_web:1"  # a retry after a lost response: no duplicate
    families = clients.ecs.list_task_definitions(familyPrefix="workshop_web")["taskDefinitionArns"]
    assert len(families) == 1


def test_a_changed_definition_makes_the_next_revision(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    web = spec.service("web")
    task_definitions.register(clients, caller, "workshop", web, EXEC_ROLE, TASK_ROLE)
    changed = web.model_copy(update={"image": "nginx:1.27"})
    again = task_definitions.register(clients, caller, "workshop", changed, EXEC_ROLE, TASK_ROLE)
    assert again.taskDefinition == "workshop_web:2"


def test_log_group_error_other_than_exists_is_mapped(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    def denied(**kwargs: Any) -> None:
        raise client_error(
            "AccessDeniedException",
            "not authorized to perform logs:CreateLogGroup",
            "CreateLogGroup",
        )

    clients.logs = Override(clients.logs, create_log_group=denied)  # type: ignore[misc]
    with pytest.raises(
        AccessDenied, match=r"CreateLogGroup /ecs/workshop_web: AccessDeniedException"
    ):
        task_definitions.register(
            clients, caller, "workshop", spec.service("web"), EXEC_ROLE, TASK_ROLE
        )
    assert clients.ecs.list_task_definitions()["taskDefinitionArns"] == []


def test_container_definition_uses_the_callers_region_for_awslogs(spec: EnvironmentSpec) -> None:
    container = desired.container_definition(spec.service("web"), "/ecs/workshop_web", "eu-west-1")
    assert container["logConfiguration"]["options"]["awslogs-region"] == "eu-west-1"


def test_a_changed_image_registers_a_new_revision_and_differences_name_the_field(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    web = spec.service("web")
    first = task_definitions.register(clients, caller, "workshop", web, EXEC_ROLE, TASK_ROLE)
    latest = task_definitions.latest_revision(clients, "workshop_web")
    assert latest is not None
    changed = web.model_copy(
        update={"image": "nginx:1.27", "environment": {"API_ENDPOINT": "http://api2"}}
    )
    wanted = desired.task_definition(caller, "workshop", changed, EXEC_ROLE, TASK_ROLE)

    assert diff.task_definition_fields(changed, wanted, latest) == {
        "image": ["nginx:latest", "nginx:1.27"],
        "environment.API_ENDPOINT": ["http://api.workshop.local", "http://api2"],
    }
    second = task_definitions.register(clients, caller, "workshop", changed, EXEC_ROLE, TASK_ROLE)
    assert (first.taskDefinition, second.taskDefinition) == ("workshop_web:1", "workshop_web:2")
    again = task_definitions.register(clients, caller, "workshop", changed, EXEC_ROLE, TASK_ROLE)
    assert again.taskDefinition == "workshop_web:2"  # no third revision


def test_differences_of_cpu_memory_and_roles(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    web = spec.service("web")
    task_definitions.register(clients, caller, "workshop", web, EXEC_ROLE, TASK_ROLE)
    latest = task_definitions.latest_revision(clients, "workshop_web")
    assert latest is not None
    other_role = f"arn:aws:iam::{ACCOUNT}:role/other"
    bigger = web.model_copy(update={"cpu": "512", "memory": "1024"})
    wanted = desired.task_definition(caller, "workshop", bigger, EXEC_ROLE, other_role)

    assert diff.task_definition_fields(bigger, wanted, latest) == {
        "cpu": ["256", "512"],
        "memory": ["512", "1024"],
        "taskRoleArn": [TASK_ROLE, other_role],
    }


# --- issue 17: logRetentionDays and the spec's tags ----------------------------------------------


def retention(clients: Clients, name: str) -> int | None:
    (group,) = log_groups(clients, name)
    return group.get("retentionInDays")


def test_a_created_log_group_gets_the_specs_retention_and_tags(
    clients: Clients, caller: Caller, spec: EnvironmentSpec
) -> None:
    web = spec.service("web")
    task_definitions.register(
        clients, caller, "workshop", web, EXEC_ROLE, TASK_ROLE,
        log_retention_days=14, spec_tags={"team": "payments"},
    )  # fmt: skip
    assert retention(clients, "/ecs/workshop_web") == 14
    tags = clients.logs.list_tags_log_group(logGroupName="/ecs/workshop_web")["tags"]
    assert tags == {**MANAGED, "team": "payments"}
    described = clients.ecs.describe_task_definition(taskDefinition="workshop_web:1", include=["TAGS"])  # fmt: skip
    assert {"key": "team", "value": "payments"} in described["tags"]


def test_a_managed_log_groups_retention_converges_and_null_means_never_expire(
    clients: Clients,
) -> None:
    name = "/ecs/workshop_web"
    assert task_definitions.ensure_log_group(clients, name, MANAGED, 30) is True
    assert retention(clients, name) == 30
    assert task_definitions.ensure_log_group(clients, name, MANAGED, 90) is False
    assert retention(clients, name) == 90
    task_definitions.ensure_log_group(clients, name, MANAGED, None)
    assert retention(clients, name) is None
    task_definitions.ensure_log_group(clients, name, MANAGED, 7)
    assert retention(clients, name) == 7


def test_an_adopted_log_group_keeps_its_own_retention(clients: Clients) -> None:
    name = "/ecs/workshop_web"
    clients.logs.create_log_group(logGroupName=name, tags={"owner": "someone"})
    clients.logs.put_retention_policy(logGroupName=name, retentionInDays=365)
    assert task_definitions.ensure_log_group(clients, name, MANAGED, 14) is False
    assert retention(clients, name) == 365


def test_without_a_retention_the_group_is_left_as_it_is(clients: Clients) -> None:
    name = "/ecs/workshop_web"
    task_definitions.ensure_log_group(clients, name, MANAGED, 5)
    task_definitions.ensure_log_group(clients, name, MANAGED)
    assert retention(clients, name) == 5
