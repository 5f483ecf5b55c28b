"""Reading executions and the emulated account the way a user would."""

from __future__ import annotations

from typing import Any

from envbuild.cli import env_name


def run_build(emulator: Any, spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    arn = emulator.start_build(spec)
    described = emulator.wait(arn)
    return described, emulator.history(arn)


def registry_id(summary: dict[str, Any], service: dict[str, Any]) -> str:
    """A service's Cloud Map registry id, as a user reads it from the build's output: the
    ``outputs`` name it <NAME>_SERVICE_ID (the per-service entries carry names only)."""
    return str(summary["outputs"][f"{env_name(service['name'])}_SERVICE_ID"])


def entered(history: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    return [
        event
        for event in history
        if event["type"].endswith("StateEntered")
        and event["stateEnteredEventDetails"]["name"] == state
    ]


def states_entered(history: list[dict[str, Any]]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")
    ]


def live_ecs_services(ecs: Any, cluster: str) -> list[str]:
    """ECS services that are not INACTIVE (moto's ListServices also returns deleted ones)."""
    arns = ecs.list_services(cluster=cluster)["serviceArns"]
    live = []
    for start in range(0, len(arns), 10):
        for service in ecs.describe_services(cluster=cluster, services=arns[start : start + 10])[
            "services"
        ]:
            if service["status"] != "INACTIVE":
                live.append(service["serviceArn"])
    return sorted(live)


def account_snapshot(emulator: Any) -> dict[str, Any]:
    """Everything a build can create, listed through the AWS APIs."""
    sd, ecs, logs, r53 = (
        emulator.client(s) for s in ("servicediscovery", "ecs", "logs", "route53")
    )
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    return {
        "namespaces": sorted(n["Name"] for n in sd.list_namespaces()["Namespaces"]),
        "registries": sorted(s["Name"] for s in sd.list_services()["Services"]),
        "task_definitions": sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        "ecs_services": live_ecs_services(ecs, cluster),
        "log_groups": sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]),
        "hosted_zones": sorted(z["Name"] for z in r53.list_hosted_zones()["HostedZones"]),
    }


def task_ips(emulator: Any, cluster: str, ecs_service: str) -> set[str]:
    ecs = emulator.client("ecs")
    arns = ecs.list_tasks(cluster=cluster, serviceName=ecs_service, desiredStatus="RUNNING")[
        "taskArns"
    ]
    if not arns:
        return set()
    ips = set()
    for task in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]:
        for attachment in task.get("attachments", []):
            for detail in attachment["details"]:
                if detail["name"] == "privateIPv4Address":
                    ips.add(detail["value"])
    return ips


def existing_namespace(emulator: Any, name: str, vpc_id: str) -> str:
    """A namespace made before any build (not by envbuild, so not tagged): its id."""
    sd = emulator.client("servicediscovery")
    operation = sd.create_private_dns_namespace(Name=name, Vpc=vpc_id)
    emulator.clock.advance(120)  # the Cloud Map operation completes
    return str(
        sd.get_operation(OperationId=operation["OperationId"])["Operation"]["Targets"]["NAMESPACE"]
    )
