"""Verify discovery three ways, per DNS name: the IPs of the service's running ECS tasks (and its
static instances) = the HEALTHY instances Cloud Map discovers = the A records Route 53 holds in the
namespace's private hosted zone. A mismatch names the leg, the missing or extra IPs and the likely
cause. Every instance must be HEALTHY (an unhealthy one is named by id and IP); the summary, once
the check passed, lists each DNS name's IPs and the static instances with their attributes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from envbuild_lambda.errors import DiscoveryMismatch, aws_errors
from envbuild_lambda.parallel import pmap
from envbuild_lambda.steps.services import Instance, chunks
from envbuild_lambda.steps.summary import service_summary

if TYPE_CHECKING:
    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service
    from envbuild_lambda.state import NamespaceState

#: DescribeTasks takes at most 100 tasks per call.
DESCRIBE_TASKS_BATCH = 100

#: Why a leg disagrees, in the words of the workshop's troubleshooting section.
CAUSE_NOT_REGISTERED = (
    "tasks not yet registered in Cloud Map (or registration failed: check the ECS service's"
    " events and its serviceRegistries)"
)
CAUSE_STALE_INSTANCE = (
    "Cloud Map still holds instances of stopped tasks (deregistration pending) or instances"
    " registered outside envbuild"
)
CAUSE_RECORD_MISSING = (
    "Route 53 A record missing for a Cloud Map instance (record deleted outside Cloud Map, or the"
    " change not yet applied)"
)
CAUSE_STALE_RECORD = (
    "Route 53 holds A records of instances Cloud Map no longer has (changed outside Cloud Map,"
    " or resolvers still cache the old answer until the TTL expires)"
)
CAUSE_UNHEALTHY = "instances registered but not HEALTHY (Cloud Map answers only healthy ones)"


def _running_task_arns(clients: Clients, cluster: str, ecs_service_name: str) -> list[str]:
    with aws_errors(f"ListTasks {ecs_service_name}"):
        pages = clients.ecs.get_paginator("list_tasks").paginate(
            cluster=cluster, serviceName=ecs_service_name, desiredStatus="RUNNING"
        )
        return [arn for page in pages for arn in page["taskArns"]]


def _describe(clients: Clients, cluster: str, arns: Sequence[str]) -> list[Any]:
    """DescribeTasks, 100 tasks per call."""
    described: list[Any] = []
    for batch in chunks(list(arns), DESCRIBE_TASKS_BATCH):
        with aws_errors(f"DescribeTasks in cluster {cluster}"):
            described += clients.ecs.describe_tasks(cluster=cluster, tasks=list(batch))["tasks"]
    return described


def _cluster_tasks(
    clients: Clients, cluster: str, ecs_service_names: Sequence[str]
) -> list[tuple[str, Any]] | None:
    """(ECS service name, task) for every RUNNING task of the cluster whose DescribeTasks
    ``group`` is "service:<name>" of one of ``ecs_service_names``: ListTasks of the whole cluster
    (100 a page), DescribeTasks 100 at a time. None as soon as that would take as many calls as
    one ListTasks per service (a shared cluster with many foreign tasks; at most that many pages
    are read in vain): the caller lists per service then. Foreign tasks (other services,
    standalone tasks) are described but never counted."""
    names = set(ecs_service_names)
    budget = len(names) - 1
    arns: list[str] = []
    pages = 0
    with aws_errors(f"ListTasks in cluster {cluster}"):
        for page in clients.ecs.get_paginator("list_tasks").paginate(
            cluster=cluster, desiredStatus="RUNNING"
        ):
            pages += 1
            arns += page["taskArns"]
            if pages + -(-len(arns) // DESCRIBE_TASKS_BATCH) > budget:
                return None
    found: list[tuple[str, Any]] = []
    for task in _describe(clients, cluster, arns):
        group = str(task.get("group", ""))
        if group.startswith("service:") and group.removeprefix("service:") in names:
            found.append((group.removeprefix("service:"), task))
    return found


def running_task_ips(
    clients: Clients, cluster: str, ecs_service_names: Sequence[str], max_workers: int
) -> dict[str, set[str]]:
    """ECS service name -> the private IPs of its RUNNING tasks. The task-read quota is
    account-wide (envbuild_lambda.pacing.READ_RATES), so: ListTasks of the whole cluster and
    DescribeTasks 100 at a time, each task mapped to its service by its group, while that takes
    fewer calls than one ListTasks per service (``_cluster_tasks``); else ListTasks per service,
    then DescribeTasks 100 tasks per call across the services (for 1 or 2 services at once)."""
    names = list(ecs_service_names)
    found = _cluster_tasks(clients, cluster, names) if len(names) >= 3 else None
    if found is None:
        listed = pmap(lambda name: _running_task_arns(clients, cluster, name), names, max_workers)
        owner = {arn: name for name, arns in zip(names, listed, strict=True) for arn in arns}
        found = [
            (owner[str(task.get("taskArn", ""))], task)
            for task in _describe(clients, cluster, list(owner))
            if str(task.get("taskArn", "")) in owner
        ]
    ips: dict[str, set[str]] = {name: set() for name in names}
    for name, task in found:
        if task.get("lastStatus") != "RUNNING":
            continue
        for attachment in task.get("attachments", []):
            for detail in attachment.get("details", []):
                if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                    ips[name].add(detail["value"])
    return ips


def discovered_instances(clients: Clients, namespace: str, service: str) -> list[Instance]:
    """Every instance Cloud Map answers for <service>.<namespace> (HealthStatus ALL: each with its
    health and attributes), in one DiscoverInstances call (the data plane's 1,000/s quota, not the
    control plane's ListInstances + GetInstancesHealthStatus). DNS answers only the HEALTHY ones."""
    with aws_errors(f"DiscoverInstances {service}.{namespace}"):
        instances = clients.servicediscovery.discover_instances(
            NamespaceName=namespace, ServiceName=service, HealthStatus="ALL", MaxResults=1000
        )["Instances"]
    return [
        Instance(
            id=item["InstanceId"],
            ipv4=item.get("Attributes", {}).get("AWS_INSTANCE_IPV4"),
            attributes=dict(item.get("Attributes", {})),
            health=str(item.get("HealthStatus", "HEALTHY")),
        )
        for item in instances
    ]


def _record_name(name: str) -> str:
    # Route 53 returns names with a trailing dot and escapes some characters as \\ooo octal.
    return name.rstrip(".").lower()


def zone_a_records(clients: Clients, zone_id: str) -> dict[str, set[str]]:
    """DNS name -> the values of every A record set of that name in the hosted zone."""
    records: dict[str, set[str]] = {}
    with aws_errors(f"ListResourceRecordSets {zone_id}"):
        pages = clients.route53.get_paginator("list_resource_record_sets").paginate(
            HostedZoneId=zone_id
        )
        for page in pages:
            for rrset in page["ResourceRecordSets"]:
                if rrset["Type"] != "A":
                    continue
                values = records.setdefault(_record_name(rrset["Name"]), set())
                values.update(r["Value"] for r in rrset.get("ResourceRecords", []))
    return records


@dataclass
class NameCheck:
    """One DNS name, its three legs, and what disagrees."""

    service: Service
    dns_name: str
    tasks: set[str]
    instances: list[Instance]
    discovered: set[str]
    records: set[str] | None
    problems: list[str] = field(default_factory=list)

    @property
    def expected(self) -> set[str]:
        return self.tasks | {i.ipv4 for i in self.service.instances}


def _diff(
    label: str, missing: set[str], extra: set[str], cause_missing: str, cause_extra: str
) -> list[str]:
    found = []
    if missing:
        found.append(f"{label} missing {sorted(missing)} ({cause_missing})")
    if extra:
        found.append(f"{label} extra {sorted(extra)} ({cause_extra})")
    return found


def check_name(
    clients: Clients,
    spec: EnvironmentSpec,
    service: Service,
    zone_records: dict[str, set[str]] | None,
    tasks: set[str],
) -> NameCheck:
    dns_name = service.dns_name(spec.namespace.name)
    registry_instances = discovered_instances(clients, spec.namespace.name, service.name)
    check = NameCheck(
        service=service,
        dns_name=dns_name,
        tasks=tasks,
        instances=registry_instances,
        discovered={i.ipv4 for i in registry_instances if i.ipv4 and i.health == "HEALTHY"},
        records=None if zone_records is None else zone_records.get(dns_name.lower(), set()),
    )
    # With autoscaling the scaler owns the count: its tasks are checked against DNS below.
    if service.autoscaling is None and len(check.tasks) != service.desiredCount:
        check.problems.append(
            f"ECS runs {len(check.tasks)} task(s) of {service.ecs_service_name}, desired"
            f" {service.desiredCount} (tasks stopped or replaced since the services were ready)"
        )
    check.problems += _diff(
        "Cloud Map (DiscoverInstances HEALTHY)",
        check.expected - check.discovered,
        check.discovered - check.expected,
        CAUSE_NOT_REGISTERED,
        CAUSE_STALE_INSTANCE,
    )
    if check.records is not None:
        check.problems += _diff(
            "Route 53 A records",
            check.discovered - check.records,
            check.records - check.expected - check.discovered,
            CAUSE_RECORD_MISSING,
            CAUSE_STALE_RECORD,
        )
    return check


def _static_instances(check: NameCheck) -> list[dict[str, Any]]:
    """Reports every instance DiscoverInstances (HealthStatus ALL) answered that is not HEALTHY,
    by id and IP; returns the static ones (id, IPv4, attributes) for the summary. The ECS tasks'
    instances need no entry of their own: once the check passes they are HEALTHY and their IPs
    are the DNS name's ``ips``. No further read: DiscoverInstances already gave each instance's
    health and attributes."""
    static = {i.id for i in check.service.instances}
    shown: list[dict[str, Any]] = []
    for instance in sorted(check.instances, key=lambda i: i.id):
        if instance.id in static:
            shown.append(
                {"id": instance.id, "ipv4": instance.ipv4, "attributes": instance.attributes}
            )
        if instance.health != "HEALTHY":
            check.problems.append(
                f"instance {instance.id} ({instance.ipv4 or 'no IPv4'}) is {instance.health}"
                f" ({CAUSE_UNHEALTHY})"
            )
    return shown


def verify(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    namespace: NamespaceState,
    registries: dict[str, str],
    task_definitions: dict[str, str],
    max_workers: int,
    removed: list[str] | None = None,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The build's summary; raises DiscoveryMismatch naming every DNS name that answers wrongly,
    with the leg that disagrees and the likely cause.

    ``removed``: ECS services envbuild created for the environment that the spec no longer lists
    and that were left running (no prune); reported as ``notInSpec`` when there are any.
    ``changes``: what the build changed (CreateServices' report), as ``changes`` and ``counts``."""
    zone = zone_a_records(clients, namespace.hostedZoneId) if namespace.hostedZoneId else None
    tasks = running_task_ips(
        clients, spec.cluster, [s.ecs_service_name for s in spec.services], max_workers
    )
    checks = pmap(
        lambda s: check_name(clients, spec, s, zone, tasks[s.ecs_service_name]),
        spec.services,
        max_workers,
    )
    statics = [_static_instances(c) for c in checks]
    failing = [c for c in checks if c.problems]
    if failing:
        raise DiscoveryMismatch(
            f"{len(failing)} of {len(checks)} DNS name(s) fail the three-way check (ECS tasks ="
            " Cloud Map HEALTHY instances = Route 53 A records): "
            + "; ".join(
                f"{c.dns_name} (service {c.service.name}): " + ", ".join(c.problems)
                for c in failing[:20]
            )
            + (f"; and {len(failing) - 20} more" if len(failing) > 20 else "")
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
        # Kept small: Step Functions carries it in every later state (256 KiB each) and a
        # 200-service build must stay far below that. Names only: each service's registry id is
        # in ``outputs`` (<NAME>_SERVICE_ID, added by the handler), the ARNs follow from the ids
        # and the namespace ARN's partition, Region and account, the ECS service is
        # <name>-service (the CLI's env file writes them all out).
        "services": [
            service_summary(
                check.service.name,
                check.dns_name,
                # = Cloud Map's HEALTHY instances = the Route 53 A records (the check passed)
                sorted(check.discovered),
                task_definitions[check.service.name],
                static,
            )
            for check, static in zip(checks, statics, strict=True)
        ],
    }
    if removed:
        summary["notInSpec"] = sorted(removed)
    if changes:
        # What this build changed (converge.change_report): rows, counts, omitted.
        summary["changes"] = changes.get("rows", [])
        summary["counts"] = changes.get("counts", {})
        if changes.get("omitted"):
            summary["changesOmitted"] = changes["omitted"]
    return summary
