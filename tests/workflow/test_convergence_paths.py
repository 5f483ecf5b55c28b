"""Re-runs converge (issue 4): one test per path, on the real ASL in the emulator.

Mutating calls are counted at the emulated AWS API (emulator.aws_faults.calls, every request by
(service, action); an action that is not Describe/List/Get/Discover mutates). The environment's
calls are those to servicediscovery, ecs, logs, route53, ec2, iam and ssm (the output
parameters); envbuild's own lock table (dynamodb PutItem/DeleteItem), the build's announcement
(events PutEvents "Environment Ready", sent by every build) and the Step Functions API are counted
apart.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest

from envbuild_emulator.aws_faults import is_mutating
from tests.conftest import REPO, fill
from tests.workflow.helpers import (
    account_snapshot,
    entered,
    existing_namespace,
    registry_id,
    run_build,
    states_entered,
    task_ips,
)

#: envbuild's own machinery, not the environment: the lock table, the build's EventBridge
#: announcement and the workflow API.
MACHINERY = ("dynamodb", "events", "stepfunctions")


def mutating(emulator: Any) -> Counter[tuple[str, str]]:
    return Counter(
        {key: n for key, n in emulator.aws_faults.calls.items() if is_mutating(key[1]) and n}
    )


def environment_calls(calls: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    return Counter({key: n for key, n in calls.items() if key[0] not in MACHINERY})


def lock_calls(calls: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    return Counter({key: n for key, n in calls.items() if key[0] == "dynamodb"})


def service_spec(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in spec["services"] if s["name"] == name)


def changed(spec: dict[str, Any], name: str, **fields: Any) -> dict[str, Any]:
    new = copy.deepcopy(spec)
    service_spec(new, name).update(fields)
    return new


def built(emulator: Any, spec: dict[str, Any]) -> dict[str, Any]:
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    return dict(json.loads(described["output"]))


def planned(emulator: Any, spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    described, history = run_build(emulator, {**spec, "plan": True})
    assert described["status"] == "SUCCEEDED", described.get("cause")
    return dict(json.loads(described["output"])), history


def changes_of(plan: dict[str, Any]) -> list[tuple[str, str, str, dict[str, list[Any]]]]:
    """(kind, name, action, fields) of the rows that change something or are not envbuild's."""
    return [
        (row["kind"], row["name"], row["action"], row["fields"])
        for row in plan["changes"]
        if row["action"] != "unchanged"
    ]


def revisions(emulator: Any) -> list[str]:
    arns = emulator.client("ecs").list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
    return sorted(arn.rsplit("/", 1)[-1] for arn in arns)


def ecs_service(emulator: Any, name: str) -> dict[str, Any]:
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    return dict(
        emulator.client("ecs").describe_services(cluster=cluster, services=[name])["services"][0]
    )


def test_an_unchanged_rerun_makes_no_mutating_call_on_the_environment(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    first = built(emulator, workshop_spec)
    first_build = mutating(emulator)
    before = account_snapshot(emulator)
    emulator.aws_faults.calls.clear()

    again = built(emulator, workshop_spec)

    calls = mutating(emulator)
    assert environment_calls(calls) == Counter()  # nothing created, updated, tagged or deleted
    # envbuild's own tables: the lock taken and released, the environment record claimed
    assert lock_calls(calls) == Counter(
        {("dynamodb", "PutItem"): 1, ("dynamodb", "DeleteItem"): 1, ("dynamodb", "UpdateItem"): 1}
    )
    assert calls[("events", "PutEvents")] == 1  # "Environment Ready", as after every build
    # the same summary (ids, ARNs, IPs, adopted flags) but for what changed: nothing
    # namespace, 3 x (registry, log group, revision, service)
    assert again["counts"] == {"unchanged": 13}
    assert (again.pop("changes"), first.pop("changes")[0]["action"]) == ([], "create")
    assert first.pop("counts") == {"create": 13}
    again.pop("counts")
    assert again == first
    assert account_snapshot(emulator) == before  # no new task definition revision
    assert revisions(emulator) == ["workshop_api:1", "workshop_db:1", "workshop_web:1"]
    # The first build's counts, for docs/convergence.md.
    assert sum(environment_calls(first_build).values()) > 0


def test_the_plan_of_an_unchanged_environment_shows_only_adopt_and_changes_nothing(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    emulator.aws_faults.calls.clear()

    plan, history = planned(emulator, workshop_spec)

    assert changes_of(plan) == []
    assert {row["action"] for row in plan["changes"]} == {"unchanged"}
    assert len(plan["changes"]) == 1 + 4 * 3  # namespace; registry, log group, revision, service
    calls = mutating(emulator)
    assert calls == Counter({("stepfunctions", "StartExecution"): 1})  # the test's own start
    assert "Acquire Lock" not in states_entered(history)
    assert (
        plan["message"]
        == "plan for workshop: 0 to create, 0 to update, 0 to replace, 0 to remove, 13 unchanged"
    )


def test_the_plan_of_a_new_environment_lists_every_create_and_creates_nothing(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    before = account_snapshot(emulator)
    emulator.aws_faults.calls.clear()  # the account's prerequisites (VPC, cluster, roles)

    plan, history = planned(emulator, workshop_spec)

    assert [(r["kind"], r["name"], r["action"]) for r in plan["changes"]][:5] == [
        ("namespace", "workshop.local", "create"),
        ("registry", "web", "create"),
        ("logGroup", "/ecs/workshop_web", "create"),
        ("taskDefinition", "workshop_web", "create"),
        ("ecsService", "web-service", "create"),
    ]
    assert {row["action"] for row in plan["changes"]} == {"create"}
    assert account_snapshot(emulator) == before
    assert environment_calls(mutating(emulator)) == Counter()
    assert lock_calls(mutating(emulator)) == Counter()  # a plan takes no lock
    assert states_entered(history)[-2:] == ["Plan Changes", "Plan Made"]


def test_a_plan_that_fails_its_preflight_names_every_problem_and_takes_no_lock(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    emulator.aws_faults.calls.clear()

    described, history = run_build(
        emulator, {**workshop_spec, "cluster": "missing-cluster", "plan": True}
    )

    assert (described["status"], described["error"]) == ("FAILED", "PreflightFailed")
    assert (
        "ECS cluster missing-cluster does not exist"
        in json.loads(described["cause"])["errorMessage"]
    )
    assert states_entered(history) == [
        "Validate Spec",
        "Plan Only?",
        "Plan Changes",
        "Build Failed",
    ]
    assert environment_calls(mutating(emulator)) == Counter()
    assert lock_calls(mutating(emulator)) == Counter()


def test_one_image_change_is_planned_then_makes_one_revision_and_one_update_service(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    spec = changed(workshop_spec, "web", image="nginx:1.27")

    plan, _ = planned(emulator, spec)

    assert changes_of(plan) == [
        ("taskDefinition", "workshop_web", "update", {"image": ["nginx:latest", "nginx:1.27"]}),
        (
            "ecsService",
            "web-service",
            "update",
            {"taskDefinition": ["workshop_web:1", "workshop_web:(new revision)"]},
        ),
    ]
    emulator.aws_faults.calls.clear()

    summary = built(emulator, spec)

    calls = environment_calls(mutating(emulator))
    assert calls == Counter({("ecs", "RegisterTaskDefinition"): 1, ("ecs", "UpdateService"): 1})
    assert revisions(emulator) == [
        "workshop_api:1",
        "workshop_db:1",
        "workshop_web:1",
        "workshop_web:2",
    ]
    web = ecs_service(emulator, "web-service")
    assert web["taskDefinition"].endswith("task-definition/workshop_web:2")
    assert [(d["status"], d["rolloutState"]) for d in web["deployments"]] == [
        ("PRIMARY", "COMPLETED")
    ]
    # The old tasks were replaced: every running task runs the new revision, and DNS answers them.
    ecs = emulator.client("ecs")
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    arns = ecs.list_tasks(cluster=cluster, serviceName="web-service")["taskArns"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    assert [t["taskDefinitionArn"].rsplit("/", 1)[-1] for t in tasks] == ["workshop_web:2"] * 2
    answers = {s["name"]: set(s["ips"]) for s in summary["services"]}
    assert answers["web"] == task_ips(emulator, cluster, "web-service")
    assert ecs_service(emulator, "api-service")["taskDefinition"].endswith("workshop_api:1")


def test_the_build_waits_for_the_rolling_update_to_complete(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)

    described, history = run_build(
        emulator, changed(workshop_spec, "api", cpu="512", memory="1024")
    )

    assert described["status"] == "SUCCEEDED", described.get("cause")
    messages = [
        json.loads(e["stateEnteredEventDetails"]["input"])["deployment"]["message"]
        for e in entered(history, "Services Ready?")
    ]
    assert any("deployment to workshop_api:2" in m for m in messages)  # old tasks still there
    assert messages[-1] == "all services ready"
    definition = emulator.client("ecs").describe_task_definition(taskDefinition="workshop_api")
    assert (definition["taskDefinition"]["cpu"], definition["taskDefinition"]["memory"]) == (
        "512",
        "1024",
    )


def test_an_update_whose_tasks_fail_to_start_is_rolled_back_by_ecs_and_fails_fast(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """The deployment circuit breaker (rollback on): a re-run with a web image whose tasks never
    start fails with DeploymentFailed after a few polls, ECS has put web-service back on
    workshop_web:1, and the build's rollback deregistered the failed revision."""
    first = built(emulator, workshop_spec)
    assert ecs_service(emulator, "web-service")["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 200,  # ECS's defaults, filled in when CreateService leaves them out
        "minimumHealthyPercent": 100,
    }
    emulator.world.faults.tasks_fail_to_start(
        "workshop_web:2", reason="CannotPullContainerError: nginx:no-such-tag: not found"
    )

    described, history = run_build(
        emulator, changed(workshop_spec, "web", image="nginx:no-such-tag")
    )

    assert described["status"] == "FAILED"
    assert described["error"] == "DeploymentFailed"
    cause = json.loads(described["cause"])["errorMessage"]
    assert cause.startswith("1 of 3 services failed to deploy: web-service: deployment of")
    assert "workshop_web:2 FAILED (ECS deployment circuit breaker: tasks failed to start.)" in cause
    assert "CannotPullContainerError: nginx:no-such-tag: not found" in cause
    assert cause.endswith("ECS rolled web-service back to workshop_web:1")
    checks = entered(history, "Check Services")
    budget = json.loads(
        entered(history, "Wait For Services")[0]["stateEnteredEventDetails"]["input"]
    )["deployment"]["poll"]["maxAttempts"]
    assert len(checks) <= budget // 4  # measured: 11 checks of the 120 allowed
    assert "Roll Back" in states_entered(history)
    assert "Verify DNS" not in states_entered(history)

    # ECS's rollback deployment completes like any rolling update.
    for _ in range(60):
        web = ecs_service(emulator, "web-service")
        if [(d["status"], d["rolloutState"]) for d in web["deployments"]] == [
            ("PRIMARY", "COMPLETED")
        ]:
            break
        emulator.clock.advance(10)
    assert web["taskDefinition"].endswith("task-definition/workshop_web:1")
    assert [(d["status"], d["rolloutState"]) for d in web["deployments"]] == [
        ("PRIMARY", "COMPLETED")
    ]
    ecs = emulator.client("ecs")
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    arns = ecs.list_tasks(cluster=cluster, serviceName="web-service")["taskArns"]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    assert [(t["lastStatus"], t["taskDefinitionArn"].rsplit("/", 1)[-1]) for t in tasks] == [
        ("RUNNING", "workshop_web:1")
    ] * web["desiredCount"]
    sd = emulator.client("servicediscovery")
    registry = registry_id(first, {"name": "web"})
    healthy = {
        i["Attributes"]["AWS_INSTANCE_IPV4"]
        for i in sd.list_instances(ServiceId=registry)["Instances"]
        if sd.get_instances_health_status(ServiceId=registry)["Status"][i["Id"]] == "HEALTHY"
    }
    assert healthy == task_ips(emulator, cluster, "web-service")
    assert len(healthy) == 2
    # The build's rollback deregistered the revision it registered; the others are untouched.
    assert revisions(emulator) == ["workshop_api:1", "workshop_db:1", "workshop_web:1"]
    inactive = ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"]
    assert [arn.rsplit("/", 1)[-1] for arn in inactive] == ["workshop_web:2"]


def test_a_desired_count_change_updates_the_service_and_dns_answers_every_task(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    spec = changed(workshop_spec, "db", desiredCount=3)

    plan, _ = planned(emulator, spec)
    assert changes_of(plan) == [("ecsService", "db-service", "update", {"desiredCount": [1, 3]})]
    emulator.aws_faults.calls.clear()

    summary = built(emulator, spec)

    assert environment_calls(mutating(emulator)) == Counter({("ecs", "UpdateService"): 1})
    db = ecs_service(emulator, "db-service")
    assert (db["desiredCount"], db["runningCount"]) == (3, 3)
    answers = {s["name"]: s["ips"] for s in summary["services"]}
    assert len(answers["db"]) == 3
    assert revisions(emulator) == ["workshop_api:1", "workshop_db:1", "workshop_web:1"]


def test_a_dns_ttl_change_updates_the_cloud_map_service(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    first = built(emulator, workshop_spec)
    spec = changed(workshop_spec, "api", dnsTtl=15)

    plan, _ = planned(emulator, spec)
    assert changes_of(plan) == [("registry", "api", "update", {"dnsTtl": [60, 15]})]
    emulator.aws_faults.calls.clear()

    summary = built(emulator, spec)

    assert environment_calls(mutating(emulator)) == Counter(
        {("servicediscovery", "UpdateService"): 1}
    )
    registry = next(registry_id(first, s) for s in first["services"] if s["name"] == "api")
    records = emulator.client("servicediscovery").get_service(Id=registry)["Service"]["DnsConfig"]
    assert records["DnsRecords"] == [{"Type": "A", "TTL": 15}]
    assert summary.pop("changes") == [
        {
            "kind": "registry",
            "name": "api",
            "action": "update",
            "fields": {"dnsTtl": [60, 15]},
            "note": "",
        }
    ]
    assert summary.pop("counts") == {"unchanged": 12, "update": 1}
    first.pop("changes"), first.pop("counts")
    assert summary == first  # same registry, tasks and answers


def test_a_new_service_in_the_spec_is_created_and_the_others_left_alone(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    spec = copy.deepcopy(workshop_spec)
    spec["services"].append({"name": "cache", "image": "memcached:1.6", "port": 11211})

    plan, _ = planned(emulator, spec)
    assert [(t, n, a) for t, n, a, _ in changes_of(plan)] == [
        ("registry", "cache", "create"),
        ("logGroup", "/ecs/workshop_cache", "create"),
        ("taskDefinition", "workshop_cache", "create"),
        ("ecsService", "cache-service", "create"),
    ]
    emulator.aws_faults.calls.clear()

    summary = built(emulator, spec)

    # the build's rows are the plan's, named alike
    assert [
        (r["kind"], r["name"], r["action"])
        for r in summary["changes"]
        if r["action"] not in ("unchanged", "adopt")
    ] == [(t, n, a) for t, n, a, _ in changes_of(plan)]
    calls = environment_calls(mutating(emulator))
    assert calls == Counter(
        {
            ("servicediscovery", "CreateService"): 1,
            ("logs", "CreateLogGroup"): 1,
            ("logs", "PutRetentionPolicy"): 1,  # logRetentionDays (default 30, issue 17)
            ("ecs", "RegisterTaskDefinition"): 1,
            ("ecs", "CreateService"): 1,
            ("ssm", "PutParameter"): 1,  # /envbuild/workshop/CACHE_SERVICE_ID
        }
    )
    assert [s["dnsName"] for s in summary["services"]][-1] == "cache.workshop.local"


def removed_db(spec: dict[str, Any], **options: Any) -> dict[str, Any]:
    new = copy.deepcopy(spec)
    new["services"] = [s for s in new["services"] if s["name"] != "db"]
    return {**new, **options}


def test_a_service_removed_from_the_spec_is_reported_and_kept_without_prune(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    before = account_snapshot(emulator)
    spec = removed_db(workshop_spec)

    plan, _ = planned(emulator, spec)
    assert [(t, n, a) for t, n, a, _ in changes_of(plan)] == [("ecsService", "db-service", "keep")]
    emulator.aws_faults.calls.clear()

    summary = built(emulator, spec)

    assert environment_calls(mutating(emulator)) == Counter()
    assert summary["notInSpec"] == ["db-service"]
    assert account_snapshot(emulator) == before
    assert ecs_service(emulator, "db-service")["runningCount"] == 1


def test_prune_deletes_the_removed_service_through_the_teardown_workflow(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    first = built(emulator, workshop_spec)
    spec = removed_db(workshop_spec, prune=True)

    plan, _ = planned(emulator, spec)
    assert [(t, n, a) for t, n, a, _ in changes_of(plan)] == [
        ("ecsService", "db-service", "remove"),
        ("registry", "db", "remove"),
        ("logGroup", "/ecs/workshop_db", "remove"),
        ("taskDefinition", "workshop_db:1", "remove"),
        ("parameter", "/envbuild/workshop/DB_SERVICE_ID", "remove"),  # its output too
    ]

    described, history = run_build(emulator, spec)

    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert "Prune Removed Services" in states_entered(history)
    summary = json.loads(described["output"])
    assert "notInSpec" not in summary
    after = account_snapshot(emulator)
    assert after["registries"] == ["api", "web"]
    assert [arn.rsplit("/", 1)[-1] for arn in after["ecs_services"]] == [
        "api-service",
        "web-service",
    ]
    assert "/ecs/workshop_db" not in after["log_groups"]
    assert revisions(emulator) == ["workshop_api:1", "workshop_web:1"]
    assert summary["services"] == [s for s in first["services"] if s["name"] != "db"]


def test_prune_never_deletes_a_service_envbuild_did_not_create(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    built(emulator, workshop_spec)
    ecs = emulator.client("ecs")
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    definition = ecs.register_task_definition(
        family="someone-else",
        containerDefinitions=[{"name": "x", "image": "busybox", "memory": 64}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="theirs", taskDefinition=definition)

    summary = built(emulator, removed_db(workshop_spec, prune=True))

    assert ecs_service(emulator, "theirs")["status"] == "ACTIVE"
    assert "notInSpec" not in summary


def test_a_rebuild_after_a_failed_namespace_operation_starts_a_new_one(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """The token is the environment's, so the rebuild sends the same CreatorRequestId: Cloud Map
    answers it with the FAILED operation, and envbuild asks again with a token of its own."""
    emulator.world.faults.fail_namespace_operation(
        "workshop.local", error_code="CANNOT_CREATE_HOSTED_ZONE", message="zone failed"
    )
    failed, _ = run_build(emulator, workshop_spec)
    assert failed["error"] == "NamespaceOperationFailed"

    summary = built(emulator, workshop_spec)

    sd = emulator.client("servicediscovery")
    operations = [
        sd.get_operation(OperationId=o["Id"])["Operation"]
        for o in sd.list_operations()["Operations"]
    ]
    creations = sorted(
        (o["Status"], o["Targets"]["NAMESPACE"])
        for o in operations
        if o["Type"] == "CREATE_NAMESPACE"
    )
    assert [status for status, _ in creations] == ["FAIL", "SUCCESS"]  # one new operation
    assert creations[1][1] == summary["namespace"]["id"]
    assert [n["Name"] for n in sd.list_namespaces()["Namespaces"]] == ["workshop.local"]


def test_adoption_never_tags_what_envbuild_did_not_create(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    existing = existing_namespace(emulator, "workshop.local", workshop_spec["namespace"]["vpcId"])
    sd = emulator.client("servicediscovery")
    arn = sd.get_namespace(Id=existing)["Namespace"]["Arn"]

    built(emulator, workshop_spec)
    built(emulator, workshop_spec)

    assert sd.list_tags_for_resource(ResourceARN=arn)["Tags"] == []
    for registry in sd.list_services()["Services"]:  # what envbuild created carries its tags
        tags = {
            t["Key"]: t["Value"]
            for t in sd.list_tags_for_resource(ResourceARN=registry["Arn"])["Tags"]
        }
        assert (tags["envbuild:environment"], tags["envbuild:managed"]) == ("workshop", "true")


# ---------------------------------------------------------------------------------------------
# Interrupted builds: each step fails in turn (onFailure keep), then a re-run completes.

#: The build's Lambda functions in the order the workflow runs them (the failing one stops the
#: build after everything before it).
BUILD_STEPS = (
    "PreflightFunction",
    "CreateNamespaceFunction",
    "CheckNamespaceOperationFunction",
    "CreateRegistriesFunction",
    "RegisterTaskDefinitionsFunction",
    "CreateServicesFunction",
    "CheckServicesFunction",
    "VerifyDnsFunction",
)


@pytest.fixture(scope="module")
def uninterrupted_listing() -> dict[str, Any]:
    """The account listing of one uninterrupted workshop build (its own emulated account)."""
    from envbuild_emulator.emulator import Emulator

    with Emulator(time_scale=0.0) as emu:
        spec = json.loads(fill((REPO / "events" / "workshop.json").read_text(), emu.prerequisites))
        described, _ = run_build(emu, spec)
        assert described["status"] == "SUCCEEDED", described.get("cause")
        return dict(account_snapshot(emu))


@pytest.mark.parametrize("step", BUILD_STEPS)
def test_a_build_interrupted_at_each_step_then_rerun_ends_as_an_uninterrupted_one(
    uninterrupted_listing: dict[str, Any],
    emulator: Any,
    workshop_spec: dict[str, Any],
    step: str,
) -> None:
    spec = {**workshop_spec, "onFailure": "keep"}
    emulator.dispatcher.fail_next(step, "RuntimeError", times=1)
    failed, _ = run_build(emulator, spec)
    assert (failed["status"], failed.get("error")) == ("FAILED", "RuntimeError")

    built(emulator, spec)

    assert account_snapshot(emulator) == uninterrupted_listing
