"""Verify discovery: each DNS name answers with exactly the IPs of the service's running tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envbuild_lambda.errors import DiscoveryMismatch, aws_errors
from envbuild_lambda.parallel import pmap
from envbuild_lambda.steps.services import chunks

if TYPE_CHECKING:
    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service
    from envbuild_lambda.state import NamespaceState

#: DescribeTasks takes at most 100 tasks per call.
DESCRIBE_TASKS_BATCH = 100


def running_task_ips(clients: Clients, cluster: str, ecs_service_name: str) -> set[str]:
    with aws_errors(f"ListTasks {ecs_service_name}"):
        pages = clients.ecs.get_paginator("list_tasks").paginate(
            cluster=cluster, serviceName=ecs_service_name, desiredStatus="RUNNING"
        )
        arns = [arn for page in pages for arn in page["taskArns"]]
    ips: set[str] = set()
    for batch in chunks(arns, DESCRIBE_TASKS_BATCH):
        with aws_errors(f"DescribeTasks {ecs_service_name}"):
            tasks = clients.ecs.describe_tasks(cluster=cluster, tasks=list(batch))["tasks"]
        for task in tasks:
            if task.get("lastStatus") != "RUNNING":
                continue
            for attachment in task.get("attachments", []):
                for detail in attachment.get("details", []):
                    if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                        ips.add(detail["value"])
    return ips


def discovered_ips(clients: Clients, namespace: str, service: str) -> set[str]:
    """What Cloud Map's DNS answers for <service>.<namespace>: its healthy instances' IPv4 addresses."""
    with aws_errors(f"DiscoverInstances {service}.{namespace}"):
        instances = clients.servicediscovery.discover_instances(
            NamespaceName=namespace, ServiceName=service, HealthStatus="HEALTHY", MaxResults=1000
        )["Instances"]
    return {
        ip
        for instance in instances
        if (ip := instance.get("Attributes", {}).get("AWS_INSTANCE_IPV4"))
    }


def _check_one(
    clients: Clients, spec: EnvironmentSpec, service: Service
) -> tuple[list[str], str | None]:
    tasks = running_task_ips(clients, spec.cluster, service.ecs_service_name)
    answers = discovered_ips(clients, spec.namespace.name, service.name)
    problem = None
    if tasks != answers or len(tasks) != service.desiredCount:
        missing = sorted(tasks - answers)
        extra = sorted(answers - tasks)
        problem = (
            f"{service.dns_name(spec.namespace.name)}: answers {sorted(answers) or 'nothing'},"
            f" running tasks {sorted(tasks) or 'none'} (desired {service.desiredCount})"
            + (f"; missing {missing}" if missing else "")
            + (f"; extra {extra}" if extra else "")
        )
    return sorted(answers), problem


def verify(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    namespace: NamespaceState,
    registries: dict[str, str],
    task_definitions: dict[str, str],
    max_workers: int,
    removed: list[str] | None = None,
) -> dict[str, Any]:
    """The build's summary; raises DiscoveryMismatch naming every DNS name that answers wrongly.

    ``removed``: ECS services envbuild created for the environment that the spec no longer lists
    and that were left running (no prune); reported as ``notInSpec`` when there are any."""
    results = pmap(lambda s: _check_one(clients, spec, s), spec.services, max_workers)
    problems = [problem for _, problem in results if problem]
    if problems:
        raise DiscoveryMismatch(
            f"{len(problems)} DNS name(s) do not answer with the running tasks' IPs"
            " (tasks not yet registered, or stopped since): " + "; ".join(problems)
        )
    summary: dict[str, Any] = {
        "environment": spec.environment,
        "namespace": {
            "name": namespace.name,
            "id": namespace.id,
            "arn": namespace.arn,
            "hostedZoneId": namespace.hostedZoneId,
            "adopted": namespace.adopted,
        },
        "cluster": spec.cluster_name,
        # Kept small (a 200-service build stays far below Step Functions' 256 KiB per state):
        # ids and names only; every ARN follows from them and the namespace ARN's partition,
        # Region and account (the CLI's env file writes them out).
        "services": [
            {
                "name": service.name,
                "dnsName": service.dns_name(spec.namespace.name),
                "ips": ips,
                "registryId": registries[service.name],
                "ecsService": service.ecs_service_name,
                "taskDefinition": task_definitions[service.name],
            }
            for service, (ips, _) in zip(spec.services, results, strict=True)
        ],
    }
    if removed:
        summary["notInSpec"] = sorted(removed)
    return summary
