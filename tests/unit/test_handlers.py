"""The Lambda handlers (functions/envbuild_lambda/handlers/*.py), called as the state machine calls
them: a LambdaContext and events shaped by the ASL's Parameters / ItemSelector / ResultSelector,
under moto. Every output must survive a JSON round trip (it is the next state's input)."""

from __future__ import annotations

import importlib
import json
import socket
import sys
import warnings
from typing import Any

import boto3
import botocore.client
import botocore.session
import pytest
from pydantic import ValidationError

from envbuild_lambda import observability
from envbuild_lambda.errors import DiscoveryMismatch, InvalidSpec, NamespaceOperationFailed
from envbuild_lambda.handlers import (
    check_namespace_operation,
    check_services,
    create_namespace,
    create_registries,
    create_services,
    register_task_definitions,
    validate_spec,
    verify_dns,
)
from envbuild_lambda.observability import count, step
from envbuild_lambda.spec import EnvironmentSpec, Service, expand_state, normalize, parse_spec

from .conftest import ACCOUNT, REGION, FakeContext, Prerequisites, workshop_spec

#: The build execution (ARN) the state machine passes as ``build``: tagged on what it creates.
BUILD = "arn:aws:states:us-east-1:123456789012:execution:build:test-build"

HANDLER_MODULES = [
    "envbuild_lambda.handlers.validate_spec",
    "envbuild_lambda.handlers.create_namespace",
    "envbuild_lambda.handlers.check_namespace_operation",
    "envbuild_lambda.handlers.create_registries",
    "envbuild_lambda.handlers.register_task_definitions",
    "envbuild_lambda.handlers.create_services",
    "envbuild_lambda.handlers.check_services",
    "envbuild_lambda.handlers.verify_dns",
]


def call(handler: Any, event: dict[str, Any], context: FakeContext) -> Any:
    """Invoke like Lambda: the event is JSON, the result must be JSON."""
    result = handler(json.loads(json.dumps(event)), context)
    return json.loads(json.dumps(result))


def spec_event(prerequisites: Prerequisites, desired: int | None = None) -> dict[str, Any]:
    raw = workshop_spec(prerequisites.variables())
    if desired is not None:
        for service in raw["services"]:
            service["desiredCount"] = desired
    return raw


# --- ValidateSpec ---------------------------------------------------------------------------------


def test_validate_spec_returns_the_normalised_spec(context: FakeContext, mocked_aws: None) -> None:
    out = call(validate_spec.handler, workshop_spec(), context)
    assert list(out) == ["spec"]
    spec = out["spec"]
    assert spec["executionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"
    assert spec["taskRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/ecsTaskRole"
    assert [s["name"] for s in spec["services"]] == ["web", "api", "db"]
    # services carry only what differs from the defaults (the state form: every Lambda parses
    # them with Service, which fills the defaults in again)
    assert spec["services"][2] == {"name": "db", "image": "redis:alpine", "port": 6379}
    assert Service.model_validate(spec["services"][2]).model_dump(mode="json") == {
        "name": "db",
        "image": "redis:alpine",
        "port": 6379,
        "desiredCount": 1,
        "cpu": "256",
        "memory": "512",
        "environment": {},
        "dnsTtl": 60,
        "instances": [],
        **Service.model_validate(
            {"name": "x", "image": "x", "port": 1}
        ).model_dump(  # issue 17's fields at their defaults
            mode="json",
            exclude={
                "name",
                "image",
                "port",
                "desiredCount",
                "cpu",
                "memory",
                "environment",
                "dnsTtl",
                "instances",
            },
        ),
    }
    assert spec["serviceDefaults"] == {}  # no value three services share is worth sharing
    assert EnvironmentSpec.model_validate(expand_state(spec)) == normalize(
        parse_spec(workshop_spec()), partition="aws", account_id=ACCOUNT
    )


def test_validate_spec_uses_the_partition_and_account_of_the_function_arn(mocked_aws: None) -> None:
    context = FakeContext(
        invoked_function_arn="arn:aws-cn:lambda:cn-north-1:210987654321:function:x"
    )
    spec = call(validate_spec.handler, workshop_spec(), context)["spec"]
    assert spec["taskRoleArn"] == "arn:aws-cn:iam::210987654321:role/ecsTaskRole"


def test_validate_spec_makes_no_aws_call(
    context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("ValidateSpec called AWS")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse)
    assert "spec" in call(validate_spec.handler, workshop_spec(), context)


def test_validate_spec_raises_invalid_spec_naming_every_bad_field(
    context: FakeContext, mocked_aws: None
) -> None:
    raw = workshop_spec()
    raw["services"][0]["desiredcount"] = 2
    raw["services"][1]["memory"] = "4096"
    with pytest.raises(InvalidSpec) as caught:
        validate_spec.handler(raw, context)
    message = str(caught.value)
    assert message.startswith("2 problem(s) in the spec")
    assert "services[0].desiredcount: unknown field (did you mean 'desiredCount'?)" in message
    assert "services[1]: memory 4096 is not valid with cpu 256 on Fargate" in message
    assert type(caught.value).__name__ == "InvalidSpec"  # the Task's Error the ASL catches


def test_validate_spec_rejects_a_non_object_input(context: FakeContext) -> None:
    with pytest.raises(InvalidSpec, match=r"the spec must be a JSON object, got an array \(\[\]\)"):
        validate_spec.handler([], context)  # type: ignore[arg-type]


# --- the whole chain, as the ASL passes data ------------------------------------------------------


def test_handlers_chained_as_the_state_machine_passes_their_outputs(
    prerequisites: Prerequisites, context: FakeContext, records: str
) -> None:
    """desiredCount 0 everywhere: moto starts no task, so 0 running = 0 desired is a ready build."""
    state = call(validate_spec.handler, spec_event(prerequisites, desired=0), context)
    spec = state["spec"]

    # Parallel branch 1: Create Namespace -> (Wait) -> Check Namespace Operation -> Create Registries
    branch: dict[str, Any] = {"spec": spec}
    branch["namespace"] = call(create_namespace.handler, {"spec": branch["spec"]}, context)
    assert branch["namespace"]["status"] == "SUBMITTED"
    assert set(branch["namespace"]) == {
        "name",
        "vpcId",
        "id",
        "arn",
        "hostedZoneId",
        "operationId",
        "status",
        "adopted",
        "poll",
        "message",
    }
    assert branch["namespace"]["poll"] == {"attempt": 0, "waitSeconds": 50, "maxAttempts": 60}
    branch["namespace"] = call(
        check_namespace_operation.handler, {"namespace": branch["namespace"]}, context
    )
    assert branch["namespace"]["status"] == "SUCCESS"
    assert branch["namespace"]["id"].startswith("ns-")
    cloud_map = call(
        create_registries.handler, {"spec": spec, "namespace": branch["namespace"]}, context
    )
    assert set(cloud_map) == {"namespace", "registries", "created"}
    assert cloud_map["created"] == ["api", "db", "web"]
    assert cloud_map["namespace"] == branch["namespace"]
    assert list(cloud_map["registries"]) == ["web", "api", "db"]

    # Parallel branch 2: task definitions while the namespace is created (all three within the
    # budget); then the loop creates each ECS service (steps/pipeline.py).
    build_arn = BUILD
    pipeline = call(register_task_definitions.handler, {"spec": spec, "build": build_arn}, context)
    assert pipeline["taskDefinitions"] == {
        "web": "workshop_web:1",
        "api": "workshop_api:1",
        "db": "workshop_db:1",
    }
    assert (pipeline["servicesDone"], pipeline["invocation"], pipeline["done"]) == (0, 0, False)
    build = {"cloudMap": cloud_map, "pipeline": pipeline}  # the ResultSelector
    build["pipeline"] = call(
        register_task_definitions.handler,
        {  # as the loop's Parameters
            "spec": spec,
            "registries": build["cloudMap"]["registries"],
            "pipeline": build["pipeline"],
            "build": build_arn,
        },
        context,
    )
    assert build["pipeline"]["taskDefinitions"] == {
        "web": "workshop_web:1",
        "api": "workshop_api:1",
        "db": "workshop_db:1",
    }
    assert (build["pipeline"]["servicesDone"], build["pipeline"]["done"]) == (3, True)
    deployment = call(
        create_services.handler,
        {  # as the ASL's Parameters
            "spec": spec,
            "registries": build["cloudMap"]["registries"],
            "taskDefinitions": build["pipeline"]["taskDefinitions"],
            "build": build_arn,
            "namespace": build["cloudMap"]["namespace"],
            "registriesCreated": build["cloudMap"]["created"],
        },
        context,
    )
    changes = deployment.pop("changes")
    assert changes["counts"] == {"create": 13}
    assert [(r["kind"], r["name"], r["action"]) for r in changes["rows"]] == [
        ("namespace", "workshop.local", "create"),
        ("registry", "web", "create"),
        ("registry", "api", "create"),
        ("registry", "db", "create"),
        ("logGroup", "/ecs/workshop_web", "create"),
        ("logGroup", "/ecs/workshop_api", "create"),
        ("logGroup", "/ecs/workshop_db", "create"),
        ("taskDefinition", "workshop_web", "create"),
        ("taskDefinition", "workshop_api", "create"),
        ("taskDefinition", "workshop_db", "create"),
        ("ecsService", "web-service", "create"),
        ("ecsService", "api-service", "create"),
        ("ecsService", "db-service", "create"),
    ]
    # the services the loop created have been starting while Create Services ran: the first
    # wait is 30 s less the seconds it took (real time here)
    assert 25 <= deployment["poll"]["waitSeconds"] <= 30
    deployment["poll"]["waitSeconds"] = 30
    assert deployment == {
        "ready": False,
        "poll": {"attempt": 0, "waitSeconds": 30, "maxAttempts": 120},
        "message": "",
        "actions": {"web-service": "created", "api-service": "created", "db-service": "created"},
        "operations": {},  # no registry TTL to update, no static instance
        "readyServices": [],  # per build: no service found ready yet
        "removed": [],  # no ECS service of the environment outside the spec
        "prune": None,
        "previous": None,  # nothing that existed before was updated
    }
    deployment["changes"] = changes
    deployment = call(
        check_services.handler,
        {"spec": spec, "registries": build["cloudMap"]["registries"], "deployment": deployment},
        context,
    )
    assert (deployment["ready"], deployment["message"], deployment["poll"]["attempt"]) == (
        True,
        "all services ready",
        1,
    )

    handed_on = call(
        verify_dns.handler,
        {
            "spec": spec,
            "namespace": build["cloudMap"]["namespace"],
            "registries": build["cloudMap"]["registries"],
            "taskDefinitions": build["pipeline"]["taskDefinitions"],
        },
        context,
    )
    # what the rest of the build needs and only that: the spec as it came in and the summary
    assert list(handed_on) == ["spec", "summary"]
    assert handed_on["spec"] == spec
    summary = handed_on["summary"]
    assert summary["environment"] == "workshop"
    assert summary["namespace"]["id"] == branch["namespace"]["id"]
    assert summary["cluster"] == "workshop-cluster"
    assert [(s["name"], s["dnsName"], s["ips"]) for s in summary["services"]] == [
        ("web", "web.workshop.local", []),
        ("api", "api.workshop.local", []),
        ("db", "db.workshop.local", []),
    ]
    web = summary["services"][0]
    assert web["taskDefinition"] == "workshop_web:1"
    web_registry = summary["outputs"]["WEB_SERVICE_ID"]
    registry_arn = f"arn:aws:servicediscovery:{REGION}:{ACCOUNT}:service/{web_registry}"
    # the workshop's step 8 names, as outputs and as SSM parameters with the same ids
    assert summary["outputs"]["NAMESPACE_ID"] == branch["namespace"]["id"]
    assert summary["outputs"]["WEB_SERVICE_ID"] == cloud_map["registries"]["web"]
    ssm = boto3.client("ssm", region_name=REGION)
    parameters = {
        p["Name"]: p["Value"]
        for p in ssm.get_parameters_by_path(Path="/envbuild/workshop")["Parameters"]
    }
    assert parameters == {
        "/envbuild/workshop/NAMESPACE_ID": branch["namespace"]["id"],
        "/envbuild/workshop/WEB_SERVICE_ID": cloud_map["registries"]["web"],
        "/envbuild/workshop/API_SERVICE_ID": cloud_map["registries"]["api"],
        "/envbuild/workshop/DB_SERVICE_ID": cloud_map["registries"]["db"],
    }
    assert {summary["parameterPath"] + name for name in summary["outputs"]} == set(parameters)
    # the ECS services exist in the mocked account, attached to their registries
    ecs = boto3.client("ecs", region_name=REGION)
    described = ecs.describe_services(cluster="workshop-cluster", services=["web-service"])[
        "services"
    ][0]
    assert described["serviceRegistries"] == [{"registryArn": registry_arn}]


def test_check_services_handler_reports_services_not_ready(
    prerequisites: Prerequisites, context: FakeContext, records: str
) -> None:
    spec = call(validate_spec.handler, spec_event(prerequisites), context)["spec"]
    namespace = call(
        check_namespace_operation.handler,
        {"namespace": call(create_namespace.handler, {"spec": spec}, context)},
        context,
    )
    registries = call(create_registries.handler, {"spec": spec, "namespace": namespace}, context)[
        "registries"
    ]
    refs = call(
        register_task_definitions.handler,
        {
            "spec": spec,
            "registries": registries,
            "pipeline": {"taskDefinitions": {}, "maxInvocations": 4},
        },
        context,
    )["taskDefinitions"]
    deployment = call(
        create_services.handler,
        {"spec": spec, "registries": registries, "taskDefinitions": refs},
        context,
    )
    deployment = call(
        check_services.handler,
        {"spec": spec, "registries": registries, "deployment": deployment},
        context,
    )
    assert deployment["ready"] is False
    # the second check comes 2 s later: the fine window after the first (settings.PollSchedule)
    assert deployment["poll"] == {"attempt": 1, "waitSeconds": 2, "maxAttempts": 120}
    assert deployment["message"].startswith("3 of 3 services not ready after 1 checks")
    assert (
        "web-service: 0/2 tasks running (Cloud Map read once they all run)" in deployment["message"]
    )
    with pytest.raises(DiscoveryMismatch, match=r"3 of 3 DNS name\(s\) fail the three-way check"):
        verify_dns.handler(
            {
                "spec": spec,
                "namespace": namespace,
                "registries": registries,
                "taskDefinitions": refs,
            },
            context,
        )


def test_settings_from_the_function_environment_shape_the_poll(
    prerequisites: Prerequisites, context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESPACE_POLL_FIRST_SECONDS", "2")
    monkeypatch.setenv("NAMESPACE_POLL_MAX_ATTEMPTS", "7")
    spec = call(validate_spec.handler, spec_event(prerequisites), context)["spec"]
    assert call(create_namespace.handler, {"spec": spec}, context)["poll"] == {
        "attempt": 0,
        "waitSeconds": 2,
        "maxAttempts": 7,
    }


def test_create_registries_refuses_a_namespace_without_id(
    prerequisites: Prerequisites, context: FakeContext
) -> None:
    spec = call(validate_spec.handler, spec_event(prerequisites), context)["spec"]
    namespace = {
        "name": "workshop.local",
        "vpcId": prerequisites.vpc_id,
        "status": "SUBMITTED",
        "operationId": "op-1",
        "poll": {"attempt": 20, "waitSeconds": 30, "maxAttempts": 20},
    }
    with pytest.raises(NamespaceOperationFailed, match=r"namespace workshop\.local has no id"):
        create_registries.handler({"spec": spec, "namespace": namespace}, context)


def test_a_malformed_event_is_rejected_before_any_aws_call(
    context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("called AWS")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse)
    with pytest.raises(ValidationError):
        create_namespace.handler({"spec": workshop_spec(), "extra": 1}, context)


# --- import time ------------------------------------------------------------------------------------


def test_importing_the_handlers_makes_no_aws_client_and_no_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    made: list[str] = []

    def refuse(self: Any, service_name: str = "", *args: Any, **kwargs: Any) -> None:
        made.append(service_name)
        raise AssertionError(f"AWS client {service_name!r} made at import time")

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network connection at import time")

    monkeypatch.setattr(boto3.session.Session, "client", refuse)
    monkeypatch.setattr(boto3.session.Session, "resource", refuse)
    monkeypatch.setattr(botocore.session.Session, "create_client", refuse)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    # import every envbuild_lambda module afresh (monkeypatch puts the originals back afterwards)
    originals = {
        n: m
        for n, m in sys.modules.items()
        if n == "envbuild_lambda" or n.startswith("envbuild_lambda.")
    }
    for name in originals:
        monkeypatch.delitem(sys.modules, name)
    for name in HANDLER_MODULES:
        module = importlib.import_module(name)
        assert module is not originals.get(name)  # really imported again, under the patches
        assert callable(module.handler)
    assert made == []


def test_build_duration_is_measured_from_the_execution_start_time() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 25, 19, 0, 30, tzinfo=UTC)
    assert verify_dns.build_seconds("2026-11-25T19:00:00.000Z", now) == 30.0
    assert verify_dns.build_seconds("2026-11-25T19:00:00+00:00", now) == 30.0
    assert verify_dns.build_seconds(None, now) is None
    assert verify_dns.build_seconds("yesterday", now) is None


# --- observability ---------------------------------------------------------------------------------


def test_a_step_that_publishes_no_metric_writes_no_warning(context: FakeContext) -> None:
    """Powertools warns on a flush without application metrics: one stderr line per such
    invocation in the function's log group (a poll that is not done yet publishes nothing)."""

    @step("Quiet")
    def quiet(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"done": False}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", append=True)  # after envbuild's own filter
        assert quiet({}, context) == {"done": False}
    assert [str(w.message) for w in caught] == []


def test_a_step_publishes_the_metrics_it_added_once_as_emf(
    context: FakeContext, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # the template sets POWERTOOLS_METRICS_NAMESPACE; the shared Metrics read it at import
    monkeypatch.setattr(observability.metrics, "namespace", "envbuild")

    @step("Counting")
    def counting(event: dict[str, Any], context: Any) -> dict[str, Any]:
        count("ServicesBuilt", 3)
        return {}

    counting({}, context)
    counting({}, context)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [blob["ServicesBuilt"] for blob in blobs] == [[3.0], [3.0]]  # one blob per invocation
    assert blobs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "envbuild"


def test_check_namespace_operation_handler_looks_at_namespace_creations_in_flight(
    prerequisites: Prerequisites, context: FakeContext
) -> None:
    """The failure path's event ({"namespaceOperations": null}, then the last answer): moto's
    operations are SUCCESS at once, so nothing is in flight."""
    spec = call(validate_spec.handler, spec_event(prerequisites), context)["spec"]
    call(create_namespace.handler, {"spec": spec}, context)
    first = call(check_namespace_operation.handler, {"namespaceOperations": None}, context)
    assert first == {
        "done": True,
        "pending": [],
        "poll": {"attempt": 0, "waitSeconds": 5, "maxAttempts": 60},
        "message": "no namespace creation in flight",
    }
    again = call(check_namespace_operation.handler, {"namespaceOperations": first}, context)
    assert again["done"] is True
    assert again["poll"]["attempt"] == 1
