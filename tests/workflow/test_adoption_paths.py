"""Ownership (issue 14 items 5 and 6): envbuild changes and deletes only what it owns, and finds
every resource of a derived name it does not own before anything is created.

Each test reproduces the original scenario on the real ASL in the emulator and compares what the
user owns, described through the AWS APIs, before and after.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from tests.workflow.helpers import account_snapshot, existing_namespace, run_build, states_entered


def environment_spec(spec: dict[str, Any], environment: str, services: list[str]) -> dict[str, Any]:
    """The workshop spec as environment ``environment`` (namespace <environment>.local) with one
    copy of its web service per name."""
    new = copy.deepcopy(spec)
    new["environment"] = environment
    new["namespace"]["name"] = f"{environment}.local"
    web = next(s for s in spec["services"] if s["name"] == "web")
    new["services"] = [{**web, "name": name, "desiredCount": 1} for name in services]
    return new


def built(emulator: Any, spec: dict[str, Any]) -> dict[str, Any]:
    described, _ = run_build(emulator, spec)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    return dict(json.loads(described["output"]))


def describe_owned(
    emulator: Any, log_groups: list[str], families: list[str], ecs_services: Sequence[str] = ()
) -> dict[str, Any]:
    """Log groups (with their tags), task definition revisions (with their tags) and ECS services
    (status, task definition, desired count, registries, tags), as a user reads them."""
    logs, ecs = emulator.client("logs"), emulator.client("ecs")
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    groups = {}
    for name in log_groups:
        found = [
            g
            for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            if g["logGroupName"] == name
        ]
        groups[name] = (
            logs.list_tags_log_group(logGroupName=name)["tags"] if found else "(does not exist)"
        )
    revisions = {}
    for family in families:
        for status in ("ACTIVE", "INACTIVE"):
            for arn in ecs.list_task_definitions(familyPrefix=family, status=status)[
                "taskDefinitionArns"
            ]:
                answer = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
                revisions[arn.rsplit("/", 1)[-1]] = (status, answer.get("tags", []))
    services = {}
    if ecs_services:
        described = ecs.describe_services(
            cluster=cluster, services=list(ecs_services), include=["TAGS"]
        )
        for s in described["services"]:
            services[s["serviceName"]] = (
                s["status"],
                s["taskDefinition"],
                s["desiredCount"],
                [r["registryArn"] for r in s.get("serviceRegistries", [])],
                s.get("tags", []),
            )
    return {"logGroups": groups, "taskDefinitions": revisions, "ecsServices": services}


# ---------------------------------------------------------------------------------------------
# Item 5: names that cannot collide


def test_two_environments_whose_hyphenated_names_collided_keep_their_own_resources(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Environment a with service b-web and environment a-b with service web both derived family
    and log group a-b-web: tearing a down deleted the log group a-b's tasks were writing to."""
    a = environment_spec(workshop_spec, "a", ["b-web"])
    a_b = environment_spec(workshop_spec, "a-b", ["web"])
    built(emulator, a)
    summary = built(emulator, a_b)

    [web] = summary["services"]
    assert web["taskDefinition"] == "a-b_web:1"
    definition = emulator.client("ecs").describe_task_definition(taskDefinition="a-b_web")
    options = definition["taskDefinition"]["containerDefinitions"][0]["logConfiguration"]
    assert options["options"]["awslogs-group"] == "/ecs/a-b_web"
    assert sorted(
        g["logGroupName"]
        for g in emulator.client("logs").describe_log_groups(logGroupNamePrefix="/ecs/a")[
            "logGroups"
        ]
    ) == ["/ecs/a-b_web", "/ecs/a_b-web"]
    before = describe_owned(emulator, ["/ecs/a-b_web"], ["a-b_web"], ["web-service"])

    teardown = emulator.wait(
        emulator.start_teardown({**a, "deleteLogGroups": True, "deregisterTaskDefinitions": True})
    )

    assert teardown["status"] == "SUCCEEDED", teardown.get("cause")
    removed = json.loads(teardown["output"])["removed"]
    assert removed["logGroups"] == ["/ecs/a_b-web"]
    assert removed["taskDefinitions"] == ["a_b-web:1"]
    after = describe_owned(emulator, ["/ecs/a-b_web"], ["a-b_web"], ["web-service"])
    assert after == before
    assert after["logGroups"]["/ecs/a-b_web"]["envbuild:environment"] == "a-b"
    assert after["ecsServices"]["web-service"][:3] == (
        "ACTIVE",
        definition["taskDefinition"]["taskDefinitionArn"],
        1,
    )


def test_a_log_group_or_family_of_the_derived_name_envbuild_does_not_own_fails_preflight(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Made by hand, or by envbuild for another environment: the build would write into it (the
    log group) or register into it (the family). Preflight names both, nothing is created."""
    logs, ecs = emulator.client("logs"), emulator.client("ecs")
    logs.create_log_group(logGroupName="/ecs/workshop_web", tags={"owner": "team-a"})
    logs.create_log_group(
        logGroupName="/ecs/workshop_api",
        tags={"envbuild:environment": "other", "envbuild:managed": "true"},
    )
    ecs.register_task_definition(
        family="workshop_db",
        containerDefinitions=[{"name": "db", "image": "redis:7", "memory": 64}],
        tags=[{"key": "owner", "value": "team-a"}],
    )
    owned = describe_owned(
        emulator,
        ["/ecs/workshop_web", "/ecs/workshop_api"],
        ["workshop_web", "workshop_api", "workshop_db"],
    )
    before = account_snapshot(emulator)

    described, history = run_build(emulator, workshop_spec)

    assert (described["status"], described["error"]) == ("FAILED", "PreflightFailed")
    cause = json.loads(described["cause"])["errorMessage"]
    assert cause.startswith("3 problem(s) found before building:")
    assert "log group /ecs/workshop_web exists and is not envbuild's" in cause
    assert "log group /ecs/workshop_api exists and is envbuild's for environment other" in cause
    assert "task definition family workshop_db has revision(s) not envbuild's" in cause
    assert "Prepare Namespace And Task Definitions" not in states_entered(history)
    assert account_snapshot(emulator) == before
    assert (
        describe_owned(
            emulator,
            ["/ecs/workshop_web", "/ecs/workshop_api"],
            ["workshop_web", "workshop_api", "workshop_db"],
        )
        == owned
    )


# ---------------------------------------------------------------------------------------------
# Item 6: adoption that never changes what it adopts


def users_service(
    emulator: Any, spec: dict[str, Any], name: str, registry: str | None = None
) -> dict[str, Any]:
    """What a user made by hand before envbuild: an ECS service <name>-service on their own
    family, optionally attached to their own registry <registry> in namespace workshop.local."""
    ecs = emulator.client("ecs")
    definition = ecs.register_task_definition(
        family=f"users-{name}",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": name, "image": "httpd:2.4"}],
    )["taskDefinition"]["taskDefinitionArn"]
    extra: dict[str, Any] = {}
    if registry is not None:
        extra["serviceRegistries"] = [{"registryArn": registry}]
    return dict(
        ecs.create_service(
            cluster=spec["cluster"],
            serviceName=f"{name}-service",
            taskDefinition=definition,
            desiredCount=1,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": spec["network"]["subnets"],
                    "securityGroups": spec["network"]["securityGroups"],
                }
            },
            **extra,
        )["service"]
    )


def users_registry_with_instance(emulator: Any, namespace_id: str, name: str) -> str:
    """A Cloud Map service <name> made by hand in the namespace, with one instance: its ARN."""
    sd = emulator.client("servicediscovery")
    registry = sd.create_service(
        Name=name,
        NamespaceId=namespace_id,
        DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 30}]},
    )["Service"]
    sd.register_instance(
        ServiceId=registry["Id"],
        InstanceId="users-db-1",
        Attributes={"AWS_INSTANCE_IPV4": "10.0.3.200"},
    )
    emulator.clock.advance(60)
    return str(registry["Arn"])


def describe_users_registry(emulator: Any, name: str) -> list[tuple[str, Any]]:
    sd = emulator.client("servicediscovery")
    registry = next(s for s in sd.list_services()["Services"] if s["Name"] == name)
    return sorted(
        (i["Id"], i.get("Attributes"))
        for i in sd.list_instances(ServiceId=registry["Id"])["Instances"]
    )


def test_resources_envbuild_does_not_own_are_all_conflicts_found_by_plan_and_preflight(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """The original scenarios: a user's api-service (envbuild adopted it, registered a revision
    of its own, and the summary named that revision while the service ran the user's); a user's
    registry db holding an instance (envbuild registered its tasks beside it, so db.workshop.local
    answered with both); a user's web-service attached to no registry (found only after the
    namespace, registries and task definitions were created, then rolled back)."""
    namespace_id = existing_namespace(
        emulator, "workshop.local", workshop_spec["namespace"]["vpcId"]
    )
    db_registry = users_registry_with_instance(emulator, namespace_id, "db")
    api_registry = users_registry_with_instance(emulator, namespace_id, "api")
    users_service(emulator, workshop_spec, "api", api_registry)
    users_service(emulator, workshop_spec, "web")
    emulator.clock.advance(120)  # the user's tasks run and are registered
    owned = (
        describe_owned(emulator, [], ["users-api", "users-web"], ["api-service", "web-service"]),
        describe_users_registry(emulator, "db"),
        describe_users_registry(emulator, "api"),
    )
    before = account_snapshot(emulator)

    # plan: one row per conflict, all of them; nothing changed
    arn = emulator.start_build({**workshop_spec, "plan": True})
    planned = emulator.wait(arn)
    assert planned["status"] == "SUCCEEDED", planned.get("cause")
    output = json.loads(planned["output"])
    conflicts = [(r["kind"], r["name"]) for r in output["changes"] if r["action"] == "conflict"]
    api_id = api_registry.rsplit("/", 1)[-1]
    db_id = db_registry.rsplit("/", 1)[-1]
    assert conflicts == [
        ("ecsService", "web-service"),
        ("registry", f"api ({api_id})"),
        ("ecsService", "api-service"),
        ("registry", f"db ({db_id})"),
    ]
    assert output["conflicts"] == 4
    assert "4 conflict(s): a build would fail at Preflight" in output["message"]
    notes = {r["name"]: r["note"] for r in output["changes"] if r["action"] == "conflict"}
    assert "users-db-1 (10.0.3.200)" in notes[f"db ({db_id})"]
    assert "is not envbuild's" in notes["api-service"]
    assert account_snapshot(emulator) == before

    # build: Preflight names every conflict and the fix, before anything is created
    described, history = run_build(emulator, workshop_spec)

    assert (described["status"], described["error"]) == ("FAILED", "PreflightFailed")
    cause = json.loads(described["cause"])["errorMessage"]
    assert cause.startswith("4 problem(s) found before building:")
    for fragment in (
        "ECS service web-service exists in cluster",
        "ECS service api-service exists in cluster",
        f"Cloud Map service api ({api_id}) in namespace workshop.local holds instance(s)",
        f"Cloud Map service db ({db_id}) in namespace workshop.local holds instance(s)"
        " envbuild did not register: users-db-1 (10.0.3.200)",
        "or delete that ECS service",
        "or deregister those instances",
    ):
        assert fragment in cause
    assert "Prepare Namespace And Task Definitions" not in states_entered(history)
    assert account_snapshot(emulator) == before
    assert (
        describe_owned(emulator, [], ["users-api", "users-web"], ["api-service", "web-service"]),
        describe_users_registry(emulator, "db"),
        describe_users_registry(emulator, "api"),
    ) == owned


def test_a_rerun_of_envbuilds_own_environment_has_no_conflict(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """Its registries hold its tasks and static instances, its families and log groups are
    tagged for it: the plan of a re-run shows no conflict and the re-run succeeds."""
    spec = copy.deepcopy(workshop_spec)
    spec["services"][2]["instances"] = [{"id": "db-vm", "ipv4": "10.0.3.100"}]
    built(emulator, spec)

    planned = emulator.wait(emulator.start_build({**spec, "plan": True}))
    output = json.loads(planned["output"])

    assert output["conflicts"] == 0
    assert {r["action"] for r in output["changes"]} == {"unchanged"}
    built(emulator, spec)


def test_another_environments_registry_is_a_conflict_even_when_it_is_empty(
    emulator: Any, workshop_spec: dict[str, Any]
) -> None:
    """An adversarial pass: alpha's web scaled to 0 by hand (its registry empty), then beta, in
    another cluster but alpha's namespace, with a service web. Beta used to adopt alpha's
    registry: web.alpha.local answered with beta's tasks and alpha's teardown then failed."""
    alpha = environment_spec(workshop_spec, "alpha", ["web"])
    described, _ = run_build(emulator, alpha)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    ecs, sd = emulator.client("ecs"), emulator.client("servicediscovery")
    ecs.update_service(cluster=alpha["cluster"], service="web-service", desiredCount=0)
    emulator.advance(600)  # alpha's tasks stopped and left the registry
    ecs.create_cluster(clusterName="other-cluster")
    (registry,) = [s for s in sd.list_services()["Services"] if s["Name"] == "web"]
    assert sd.list_instances(ServiceId=registry["Id"])["Instances"] == []
    beta = {**environment_spec(workshop_spec, "beta", ["web"]), "cluster": "other-cluster"}
    beta["namespace"] = dict(alpha["namespace"])
    before = account_snapshot(emulator)

    refused, _ = run_build(emulator, beta)

    assert (refused["status"], refused["error"]) == ("FAILED", "PreflightFailed")
    assert (
        f"Cloud Map service web ({registry['Id']}) in namespace alpha.local is envbuild's for"
        " environment alpha" in refused["cause"]
    )
    assert account_snapshot(emulator) == before
    assert sd.list_instances(ServiceId=registry["Id"])["Instances"] == []
