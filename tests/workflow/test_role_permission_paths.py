"""Issue 17 through the whole build: the task execution role must be allowed to read the secrets
the spec names (a Preflight problem naming secret, field and role, before anything is created),
and a service with enableExecuteCommand whose task role lacks ECS Exec's ssmmessages actions is a
warning that the build goes on past, shown in the execution's history, the CLI's progress and its
JSON document. The roles' permissions come from the emulator's IAM SimulatePrincipalPolicy."""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pytest

from envbuild import report
from envbuild.follow import Progress, since_start

from .helpers import live_ecs_services, run_build

pytestmark = pytest.mark.e2e


def _web(spec: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in spec["services"] if s["name"] == "web")


def test_a_secret_the_execution_role_may_not_read_fails_the_build_before_anything_is_created(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    iam = emulator.client("iam")
    secrets = emulator.client("secretsmanager")
    readable = secrets.create_secret(Name="shop/ok", SecretString="x")["ARN"]
    denied = secrets.create_secret(Name="shop/db", SecretString="x")["ARN"]
    # the seeded execution role reads every secret: here it reads one only
    iam.delete_role_policy(RoleName="ecsTaskExecutionRole", PolicyName="ReadSecrets")
    iam.put_role_policy(
        RoleName="ecsTaskExecutionRole",
        PolicyName="ReadOne",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": readable,
                    }
                ],
            }
        ),
    )
    _web(workshop_spec)["secrets"] = {"OK": readable, "DB_PASSWORD": f"{denied}:password::"}
    described, _ = run_build(emulator, workshop_spec)

    assert described["status"] == "FAILED"
    assert described["error"] == "PreflightFailed"
    cause = report.error_message(described["cause"])
    role = emulator.prerequisites["EXECUTION_ROLE_ARN"]
    assert cause.startswith("1 problem(s) found before building:"), cause
    assert (
        f"the task execution role {role} may not read secret {denied} (web.secrets.DB_PASSWORD):"
        f" secretsmanager:GetSecretValue on {denied} is implicitDeny" in cause
    )
    assert "web.secrets.OK" not in cause
    assert "not-a-real" not in cause
    sd, ecs = emulator.client("servicediscovery"), emulator.client("ecs")
    assert sd.list_namespaces()["Namespaces"] == []
    assert live_ecs_services(ecs, emulator.prerequisites["CLUSTER_NAME"]) == []
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []


def test_ecs_exec_without_the_task_roles_permissions_warns_and_the_build_goes_on(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    emulator.client("iam").delete_role_policy(RoleName="ecsTaskRole", PolicyName="EcsExec")
    _web(workshop_spec)["enableExecuteCommand"] = True
    described, history = run_build(emulator, workshop_spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")

    role = emulator.prerequisites["TASK_ROLE_ARN"]
    expected = (
        f"service web sets enableExecuteCommand but its task role {role} (taskRoleArn) may not"
        " call ssmmessages:CreateControlChannel, ssmmessages:CreateDataChannel,"
        " ssmmessages:OpenControlChannel, ssmmessages:OpenDataChannel: ECS Exec (aws ecs"
        " execute-command) will fail until the role allows them; the service itself runs"
    )
    # the history (what `envbuild watch` and the console read) keeps it
    assert report.warnings_from_history(history) == [expected]
    # --output json: the document carries it
    document = report.collect(described, history).document()
    assert document["warnings"] == [expected]
    assert document["status"] == "SUCCEEDED"
    # the CLI's progress shows it on the Preflight's line
    out = io.StringIO()
    progress = Progress(
        {"States": {}}, out, since_start(datetime.fromtimestamp(0).astimezone()), live=False
    )
    for event in history:
        progress.show(event)
    progress.close()
    assert f"⚠ Preflight: {expected}" in out.getvalue()
    # the service was built with ECS Exec on all the same
    (web,) = emulator.client("ecs").describe_services(
        cluster=emulator.prerequisites["CLUSTER_NAME"], services=["web-service"]
    )["services"]
    assert web["enableExecuteCommand"] is True


def test_ecs_exec_with_the_seeded_task_role_gives_no_warning(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    _web(workshop_spec)["enableExecuteCommand"] = True
    workshop_spec["plan"] = True
    described, history = run_build(emulator, workshop_spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert report.warnings_from_history(history) == []
    assert "warnings" not in json.loads(described["output"])
