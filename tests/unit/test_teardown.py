"""Teardown steps (functions/envbuild_lambda/steps/teardown.py) and the removal plan
(functions/envbuild_lambda/removal.py) on moto, stubbed where moto does not model AWS (Cloud Map
operations that FAIL, ResourceInUse)."""

from __future__ import annotations

from typing import Any

import pytest

from envbuild_lambda.aws import Caller, Clients
from envbuild_lambda.errors import (
    CloudMapOperationFailed,
    EnvironmentMoved,
    InvalidPlan,
    ResourceInUse,
    ResourceNotFound,
)
from envbuild_lambda.handlers import teardown_finish, teardown_plan
from envbuild_lambda.removal import Progress, RemovalPlan, parse_plan, split_options
from envbuild_lambda.settings import PollSchedule
from envbuild_lambda.spec import EnvironmentSpec
from envbuild_lambda.state import Poll
from envbuild_lambda.steps import record, teardown

from .conftest import FakeContext, Override, client_error, workshop_spec
from .test_registries import make_namespace

TAGS = [
    {"Key": "envbuild:environment", "Value": "workshop"},
    {"Key": "envbuild:managed", "Value": "true"},
]


def registry(clients: Clients, namespace_id: str, name: str = "web") -> str:
    return str(
        clients.servicediscovery.create_service(
            Name=name,
            NamespaceId=namespace_id,
            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 60}]},
            Tags=TAGS,
        )["Service"]["Id"]
    )


def ecs_service(clients: Clients, cluster: str, name: str, desired: int = 2) -> None:
    clients.ecs.register_task_definition(
        family="workshop_web",
        containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}],
    )
    clients.ecs.create_service(
        cluster=cluster,
        serviceName=name,
        taskDefinition="workshop_web",
        desiredCount=desired,
        tags=[{"key": "envbuild:environment", "value": "workshop"}],
    )


# --- the plan ---------------------------------------------------------------------------------
def test_a_plan_names_every_bad_field_with_a_hint() -> None:
    with pytest.raises(InvalidPlan) as caught:
        parse_plan({"registry": ["srv-1"], "taskDefinitions": ["web"]})
    message = str(caught.value)
    assert "plan.registry: unknown field (did you mean 'registries'?)" in message
    assert "plan.taskDefinitions[0]" in message


def test_a_plan_with_ecs_services_needs_the_cluster() -> None:
    with pytest.raises(InvalidPlan, match="cluster is required when ecsServices"):
        parse_plan({"ecsServices": ["web-service"]})
    assert parse_plan({}).is_empty()


def test_teardown_options_are_split_from_the_spec_and_must_be_booleans() -> None:
    spec, options = split_options({"environment": "x", "deleteLogGroups": True})
    assert spec == {"environment": "x"}
    assert options == {
        "deleteLogGroups": True,
        "deregisterTaskDefinitions": False,
        "createdBy": None,
    }
    with pytest.raises(InvalidPlan, match="deregisterTaskDefinitions must be true or false"):
        split_options({"deregisterTaskDefinitions": "yes"})
    build = "arn:aws:states:us-east-1:123456789012:execution:sm:b1"
    assert split_options({"environment": "x", "createdBy": build})[1]["createdBy"] == build
    with pytest.raises(InvalidPlan, match="createdBy must be a build execution ARN"):
        split_options({"createdBy": 7})


def test_plan_of_a_never_built_environment_is_empty(
    spec: EnvironmentSpec, clients: Clients, caller: Caller
) -> None:
    plan = teardown.plan_teardown(
        clients,
        caller,
        spec,
        None,
        delete_log_groups=True,
        deregister_task_definitions=True,
        max_workers=2,
    )
    assert plan.is_empty()
    assert plan.kept == []
    assert plan.notes == [
        "no environment record for workshop: envbuild manages nothing under that name"
    ]


def test_a_recorded_cluster_that_is_missing_is_an_error_never_an_empty_cluster(
    spec: EnvironmentSpec, clients: Clients, caller: Caller, records: str
) -> None:
    claimed = record.claim(clients, records, spec, "arn:build")
    gone = spec.model_copy(update={"cluster": "deleted-cluster"})
    moved = record.EnvironmentRecord(**{**claimed.__dict__, "cluster": "deleted-cluster"})

    with pytest.raises(ResourceNotFound, match="cluster deleted-cluster, recorded for environment"):
        teardown.plan_teardown(
            clients,
            caller,
            gone,
            moved,
            delete_log_groups=True,
            deregister_task_definitions=True,
            max_workers=2,
        )


def test_a_build_in_another_place_than_the_record_is_refused(
    spec: EnvironmentSpec, clients: Clients, records: str
) -> None:
    record.claim(clients, records, spec, "arn:build")
    elsewhere = spec.model_copy(update={"cluster": "other-cluster"})

    with pytest.raises(EnvironmentMoved, match="cluster: the spec says other-cluster"):
        record.claim(clients, records, elsewhere, "arn:build2")
    assert record.read(clients, records, "workshop").cluster == spec.cluster  # type: ignore[union-attr]


def test_plan_keeps_ecs_services_not_tagged_for_the_environment(
    spec: EnvironmentSpec, clients: Clients, caller: Caller, records: str
) -> None:
    ecs_service(clients, spec.cluster, "web-service")  # spec name, but not managed=true
    plan = teardown.plan_teardown(
        clients,
        caller,
        spec,
        record.claim(clients, records, spec, "arn:build"),
        delete_log_groups=False,
        deregister_task_definitions=False,
        max_workers=2,
    )
    assert plan.ecsServices == []
    assert [(k.type, k.name) for k in plan.kept] == [("ecsService", "web-service")]


def test_the_plan_handler_takes_the_spec_with_its_options(
    mocked_aws: None, cluster: str, context: FakeContext, records: str
) -> None:
    event = {"input": {**workshop_spec(), "deleteLogGroups": True}}
    result = teardown_plan.handler(event, context)  # type: ignore[arg-type]
    plan = RemovalPlan.model_validate(result["plan"])
    assert plan.environment == "workshop"
    assert plan.is_empty()  # no record: nothing is envbuild's


# --- ECS ----------------------------------------------------------------------------------------
def test_scale_to_zero_sets_desired_count_and_checks_at_once(
    clients: Clients, cluster: str, schedule: PollSchedule
) -> None:
    ecs_service(clients, cluster, "web-service", desired=2)
    plan = RemovalPlan(cluster=cluster, ecsServices=["web-service", "gone-service"])

    progress = teardown.scale_to_zero(clients, plan, schedule, max_workers=2)

    described = clients.ecs.describe_services(cluster=cluster, services=["web-service"])
    assert described["services"][0]["desiredCount"] == 0
    assert progress.done is True  # moto runs no tasks: nothing left to stop
    assert progress.poll == Poll.start(schedule)


def test_delete_ecs_services_skips_missing_and_waits_for_inactive(
    clients: Clients, cluster: str, schedule: PollSchedule
) -> None:
    ecs_service(clients, cluster, "web-service", desired=0)
    plan = RemovalPlan(cluster=cluster, ecsServices=["web-service", "gone-service"])

    progress = teardown.delete_ecs_services(clients, plan, schedule, max_workers=2)

    assert progress.removed == ["web-service"]
    assert progress.done is True
    again = teardown.delete_ecs_services(clients, plan, schedule, max_workers=2)
    assert again.removed == []
    assert again.done is True


def test_draining_services_are_waited_for(
    clients: Clients, cluster: str, schedule: PollSchedule
) -> None:
    real = clients.ecs

    def draining(**kwargs: Any) -> dict[str, Any]:
        answer = real.describe_services(**kwargs)
        for service in answer["services"]:
            service["status"] = "DRAINING"
        return answer

    ecs_service(clients, cluster, "web-service", desired=0)
    clients.ecs = Override(real, describe_services=draining)  # type: ignore[misc]
    waiting = Progress(done=False, poll=Poll.start(schedule), pending=["web-service"])

    progress = teardown.check_services_inactive(
        clients, RemovalPlan(cluster=cluster), waiting, schedule
    )

    assert progress.done is False
    assert progress.poll.attempt == 1
    assert "web-service: DRAINING" in progress.message


# --- Cloud Map ----------------------------------------------------------------------------------
def test_every_instance_is_deregistered_and_its_operation_awaited(
    clients: Clients, schedule: PollSchedule
) -> None:
    registry_id = registry(clients, make_namespace(clients))
    clients.servicediscovery.register_instance(
        ServiceId=registry_id, InstanceId="static-1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.9"}
    )
    plan = RemovalPlan(registries=[registry_id, "srv-gone"])

    progress = teardown.deregister_instances(clients, plan, schedule, max_workers=2)

    assert progress.removed == [f"{registry_id}/static-1"]
    assert len(progress.pending) == 1
    checked = teardown.check_operations(clients, progress, schedule, max_workers=2)
    assert checked.done is True
    assert checked.pending == []


def test_a_failed_operation_is_an_error_naming_it(clients: Clients, schedule: PollSchedule) -> None:
    def get_operation(OperationId: str) -> dict[str, Any]:
        return {
            "Operation": {
                "Id": OperationId,
                "Type": "DEREGISTER_INSTANCE",
                "Status": "FAIL",
                "ErrorCode": "INTERNAL_FAILURE",
                "ErrorMessage": "boom",
            }
        }

    clients.servicediscovery = Override(clients.servicediscovery, get_operation=get_operation)  # type: ignore[misc]
    pending = Progress(done=False, poll=Poll.start(schedule), pending=["op-1"])

    with pytest.raises(CloudMapOperationFailed, match=r"op-1 .*INTERNAL_FAILURE: boom"):
        teardown.check_operations(clients, pending, schedule, max_workers=2)


def test_a_registry_still_in_use_is_a_resource_in_use_error(
    clients: Clients, schedule: PollSchedule
) -> None:
    def delete_service(Id: str) -> None:
        raise client_error("ResourceInUse", "Service has registered instances", "DeleteService")

    clients.servicediscovery = Override(clients.servicediscovery, delete_service=delete_service)  # type: ignore[misc]

    with pytest.raises(ResourceInUse, match="DeleteService \\(Cloud Map\\) srv-1"):
        teardown.delete_registries(clients, RemovalPlan(registries=["srv-1"]), schedule, 2)


def test_registries_and_namespace_already_gone_are_skipped(
    clients: Clients, schedule: PollSchedule
) -> None:
    namespace_id = make_namespace(clients)
    registry_id = registry(clients, namespace_id)
    real = clients.servicediscovery

    def delete_service(Id: str) -> Any:  # moto answers 200 for an unknown id; AWS does not
        if Id == "srv-gone":
            raise client_error("ServiceNotFound", f"Service not found: {Id}", "DeleteService")
        return real.delete_service(Id=Id)

    clients.servicediscovery = Override(real, delete_service=delete_service)  # type: ignore[misc]
    plan = RemovalPlan(
        registries=[registry_id, "srv-gone"],
        namespace={"id": namespace_id, "name": "workshop.local"},  # type: ignore[arg-type]
    )

    deleted = teardown.delete_registries(clients, plan, schedule, max_workers=2)
    started = teardown.delete_namespace(clients, plan, schedule)
    again = teardown.delete_namespace(clients, plan, schedule)

    assert deleted.removed == [registry_id]
    assert started.removed == [namespace_id]
    assert started.done is False
    assert len(started.pending) == 1
    assert again.done is True
    assert "already deleted" in again.message


# --- the last step and the summary ---------------------------------------------------------------
def test_finish_removes_log_groups_and_revisions_and_summarizes(
    mocked_aws: None, clients: Clients, context: FakeContext, records: str
) -> None:
    from .conftest import session

    logs, ecs = session().client("logs"), session().client("ecs")
    logs.create_log_group(logGroupName="/ecs/workshop_web")
    ecs.register_task_definition(
        family="workshop_web",
        containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}],
    )
    plan = {
        "environment": "workshop",
        "logGroups": ["/ecs/workshop_web", "/ecs/workshop_gone"],
        "taskDefinitions": ["workshop_web:1"],
        "kept": [{"type": "namespace", "id": "ns-1", "name": "x.local", "reason": "adopted"}],
    }
    event = {
        "plan": plan,
        "removed": {"ecsServices": [], "instances": [], "registries": [], "namespace": []},
    }

    summary = teardown_finish.handler(event, context)  # type: ignore[arg-type]

    assert summary["removed"]["logGroups"] == ["/ecs/workshop_web"]
    assert summary["removed"]["taskDefinitions"] == ["workshop_web:1"]
    assert summary["found"] is True
    assert summary["message"] == "removed 1 log group(s), 1 task definition revision(s); kept 1"
    assert logs.describe_log_groups()["logGroups"] == []
    assert ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"] == []


def test_nothing_found_is_said_so() -> None:
    summary = teardown.summarize(RemovalPlan(environment="demo"), {}, [], [])
    assert summary["found"] is False
    assert summary["message"] == "nothing found for environment demo: nothing to remove"


def test_a_delete_denied_on_a_resource_already_gone_is_skipped_and_on_a_live_one_is_an_error(
    clients: Clients, schedule: PollSchedule
) -> None:
    """The delete permissions are conditioned on envbuild's tags (docs/security.md). IAM finds
    no tags on a resource that no longer exists, so a retried step's delete of what its lost
    first attempt removed is denied on AWS (the IAM proof with resources saw it): that is gone,
    not an error. A denied delete of a resource that is still there stays an error."""
    namespace_id = make_namespace(clients)
    live = registry(clients, namespace_id)
    real = clients.servicediscovery

    def delete_service(Id: str) -> Any:  # every delete is denied, as for an untagged resource
        raise client_error("AccessDeniedException", f"not authorized on {Id}", "DeleteService")

    def get_service(Id: str) -> Any:
        if Id == "srv-gone":
            raise client_error("ServiceNotFound", f"Service not found: {Id}", "GetService")
        return real.get_service(Id=Id)

    clients.servicediscovery = Override(  # type: ignore[misc]
        real, delete_service=delete_service, get_service=get_service
    )

    skipped = teardown.delete_registries(
        clients, RemovalPlan(registries=["srv-gone"]), schedule, max_workers=1
    )
    assert skipped.removed == []
    with pytest.raises(Exception, match="AccessDenied"):
        teardown.delete_registries(clients, RemovalPlan(registries=[live]), schedule, 1)


def test_a_log_group_already_gone_is_not_deleted_again(clients: Clients) -> None:
    real = clients.logs
    real.create_log_group(logGroupName="/ecs/workshop_web")
    calls: list[str] = []

    def delete_log_group(logGroupName: str) -> Any:
        calls.append(logGroupName)
        return real.delete_log_group(logGroupName=logGroupName)

    clients.logs = Override(real, delete_log_group=delete_log_group)  # type: ignore[misc]

    removed = teardown.delete_log_groups(clients, ["/ecs/workshop_web", "/ecs/workshop_gone"], 2)

    assert removed == ["/ecs/workshop_web"]
    assert calls == ["/ecs/workshop_web"]  # no delete for the one already gone (IAM would deny it)


def test_output_parameters_already_gone_are_not_deleted_again(clients: Clients) -> None:
    real = clients.ssm
    real.put_parameter(Name="/envbuild/workshop/NAMESPACE_ID", Value="ns-1", Type="String")
    calls: list[list[str]] = []

    def delete_parameters(Names: list[str]) -> Any:
        calls.append(list(Names))
        return real.delete_parameters(Names=Names)

    clients.ssm = Override(real, delete_parameters=delete_parameters)  # type: ignore[misc]

    deleted = teardown.delete_parameters(
        clients, ["/envbuild/workshop/NAMESPACE_ID", "/envbuild/workshop/WEB_SERVICE_ID"]
    )
    again = teardown.delete_parameters(clients, ["/envbuild/workshop/NAMESPACE_ID"])

    assert deleted == ["/envbuild/workshop/NAMESPACE_ID"]
    assert calls == [["/envbuild/workshop/NAMESPACE_ID"]]  # none for what is gone (IAM would deny)
    assert again == []


def test_a_log_group_delete_denied_after_its_lost_first_attempt_is_already_gone(
    clients: Clients,
) -> None:
    """The SDK's retry of a DeleteLogGroup whose first response was lost: the group is gone, and
    AWS denies the retry (no tags left to match the permission's condition)."""
    real = clients.logs
    real.create_log_group(logGroupName="/ecs/workshop_web")

    def delete_log_group(logGroupName: str) -> Any:
        real.delete_log_group(logGroupName=logGroupName)  # the first attempt went through
        raise client_error("AccessDeniedException", "not authorized", "DeleteLogGroup")

    clients.logs = Override(real, delete_log_group=delete_log_group)  # type: ignore[misc]

    assert teardown.delete_log_groups(clients, ["/ecs/workshop_web"], 1) == []
    assert real.describe_log_groups(logGroupNamePrefix="/ecs/workshop_web")["logGroups"] == []
