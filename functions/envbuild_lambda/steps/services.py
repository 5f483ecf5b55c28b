"""ECS Fargate services attached to their Cloud Map registries, and their readiness."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from envbuild_lambda.errors import CloudMapOperationFailed, ServiceConflict, aws_errors
from envbuild_lambda.pacing import RateLimiter
from envbuild_lambda.parallel import pmap
from envbuild_lambda.spec import is_managed
from envbuild_lambda.state import Poll, ServicesState

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import ServiceTypeDef

    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.settings import PollSchedule
    from envbuild_lambda.spec import EnvironmentSpec, Service

T = TypeVar("T")

#: DescribeServices takes at most 10 services per call.
DESCRIBE_BATCH = 10


def chunks[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def registry_arn(caller: Caller, registry_id: str) -> str:
    return caller.arn("servicediscovery", f"service/{registry_id}")


def describe_services(
    clients: Clients, cluster: str, names: Iterable[str], *, tags: bool = False
) -> dict[str, ServiceTypeDef]:
    """ECS service name -> description, for the services that exist (any status); with their
    tags if ``tags``."""
    found: dict[str, ServiceTypeDef] = {}
    for batch in chunks(list(names), DESCRIBE_BATCH):
        with aws_errors(f"DescribeServices in cluster {cluster}"):
            response = (
                clients.ecs.describe_services(
                    cluster=cluster, services=list(batch), include=["TAGS"]
                )
                if tags
                else clients.ecs.describe_services(cluster=cluster, services=list(batch))
            )
        for service in response["services"]:
            found[service["serviceName"]] = service
    return found


def ecs_tags(service: ServiceTypeDef) -> dict[str, str]:
    return {tag.get("key", ""): tag.get("value", "") for tag in service.get("tags", [])}


def short_task_definition(arn: str) -> str:
    """'family:revision' of a task definition ARN (or of 'family:revision' itself)."""
    return arn.rsplit("/", 1)[-1]


def service_changes(
    current: ServiceTypeDef, service: Service, task_definition: str
) -> dict[str, tuple[str, str]]:
    """What UpdateService must change on an ECS service envbuild manages: field -> (old, new)."""
    changes: dict[str, tuple[str, str]] = {}
    have = short_task_definition(str(current.get("taskDefinition", "")))
    if have != task_definition:
        changes["taskDefinition"] = (have, task_definition)
    if current.get("desiredCount") != service.desiredCount:
        changes["desiredCount"] = (str(current.get("desiredCount")), str(service.desiredCount))
    return changes


def update_service(
    clients: Clients,
    spec: EnvironmentSpec,
    service: Service,
    task_definition: str,
    pace: RateLimiter | None = None,
) -> None:
    """Roll the ECS service to the task definition and desired count of the spec (ECS starts a
    new deployment; CheckServices waits for it to complete). Setting the same values again is
    harmless, so a throttled attempt may be repeated."""

    def update() -> None:
        with aws_errors(
            f"UpdateService (ECS) {service.ecs_service_name} in cluster {spec.cluster_name}"
        ):
            clients.ecs.update_service(
                cluster=spec.cluster,
                service=service.ecs_service_name,
                taskDefinition=task_definition,
                desiredCount=service.desiredCount,
            )

    if pace is not None:
        pace.call(update)
    else:
        update()


def create_service(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    service: Service,
    registry_id: str,
    task_definition: str,
    build: str | None = None,
    pace: RateLimiter | None = None,
) -> None:
    def create() -> None:
        with aws_errors(
            f"CreateService (ECS) {service.ecs_service_name} in cluster {spec.cluster_name}"
        ):
            clients.ecs.create_service(
                cluster=spec.cluster,
                serviceName=service.ecs_service_name,
                taskDefinition=task_definition,
                desiredCount=service.desiredCount,
                launchType="FARGATE",
                networkConfiguration={
                    "awsvpcConfiguration": {
                        "subnets": spec.network.subnets,
                        "securityGroups": spec.network.securityGroups,
                        "assignPublicIp": spec.network.assignPublicIp,
                    }
                },
                serviceRegistries=[{"registryArn": registry_arn(caller, registry_id)}],
                # With the registry: a service re-created after a prune or teardown (new
                # registry) is a new request, not an answer with the deleted one.
                clientToken=spec.request_token(
                    "ecs-service", spec.cluster_name, service.name, registry_id, max_length=36
                ),
                tags=[{"key": key, "value": value} for key, value in spec.tags(build).items()],
                propagateTags="SERVICE",
                enableECSManagedTags=True,
            )

    # CreateService is idempotent (clientToken): a throttled attempt may be repeated.
    if pace is not None:
        pace.call(create)
    else:
        create()


def _check_adoptable(
    current: ServiceTypeDef, service: Service, spec: EnvironmentSpec, wanted: str
) -> None:
    """An existing ECS service is used as it is only if it already answers for this registry."""
    attached = [r.get("registryArn", "") for r in current.get("serviceRegistries", [])]
    if wanted not in attached:
        raise ServiceConflict(
            f"ECS service {service.ecs_service_name} already exists in cluster {spec.cluster_name}"
            f" attached to {', '.join(attached) or 'no Cloud Map registry'}, not to {wanted};"
            " envbuild does not modify services it did not create: use other service names or"
            " another cluster, or delete that service"
        )


def create_or_adopt_services(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    registries: dict[str, str],
    task_definitions: dict[str, str],
    schedule: PollSchedule,
    max_workers: int,
    build: str | None = None,
    writes_per_second: int = 5,
) -> ServicesState:
    """Create the spec's ECS services that do not exist; roll those envbuild manages for this
    environment to the spec's task definition and desired count (UpdateService) where they
    differ; adopt the others as they are. Create/UpdateService are paced at
    ``writes_per_second``, the ECS service-modification quota."""
    pace = RateLimiter(writes_per_second, burst=writes_per_second)
    existing = describe_services(
        clients, spec.cluster, (s.ecs_service_name for s in spec.services), tags=True
    )
    actions: dict[str, str] = {}
    to_create: list[Service] = []
    to_update: list[Service] = []
    for service in spec.services:
        current = existing.get(service.ecs_service_name)
        status = current["status"] if current else "INACTIVE"
        if current and status == "ACTIVE":
            _check_adoptable(current, service, spec, registry_arn(caller, registries[service.name]))
            managed = is_managed(ecs_tags(current), spec.environment)
            if managed and service_changes(current, service, task_definitions[service.name]):
                to_update.append(service)
                actions[service.ecs_service_name] = "updated"
            else:
                actions[service.ecs_service_name] = "adopted"
        elif status == "DRAINING":
            raise ServiceConflict(
                f"ECS service {service.ecs_service_name} in cluster {spec.cluster_name} is DRAINING after a delete;"
                " wait until it is INACTIVE, then build again"
            )
        else:
            to_create.append(service)
            actions[service.ecs_service_name] = "created"
    pmap(
        lambda s: create_service(
            clients, caller, spec, s, registries[s.name], task_definitions[s.name], build, pace
        ),
        to_create,
        max_workers,
    )
    pmap(
        lambda s: update_service(clients, spec, s, task_definitions[s.name], pace),
        to_update,
        max_workers,
    )
    # Nothing new to start (an unchanged re-run): check at once instead of waiting a task's
    # start-up time.
    poll = Poll.start(schedule, first_wait=None if to_create or to_update else 0)
    return ServicesState(ready=False, poll=poll, actions=actions)


def registered_count(clients: Clients, registry_id: str) -> int:
    with aws_errors(f"ListInstances {registry_id}"):
        pages = clients.servicediscovery.get_paginator("list_instances").paginate(
            ServiceId=registry_id
        )
        return sum(len(page["Instances"]) for page in pages)


def _not_ready_reason(
    service: Service, description: ServiceTypeDef | None, registered: int
) -> str | None:
    name = service.ecs_service_name
    if description is None or description["status"] != "ACTIVE":
        return f"{name}: not found or not ACTIVE"
    running = description.get("runningCount", 0)
    deployments = description.get("deployments", [])
    # A rolling update (UpdateService to a new task definition) is done when the old deployment
    # has gone: its tasks stopped, leaving only the PRIMARY one.
    rolled_out = len(deployments) <= 1
    if running == service.desiredCount and registered == service.desiredCount and rolled_out:
        return None
    reason = f"{name}: {running}/{service.desiredCount} tasks running, {registered}/{service.desiredCount} registered in Cloud Map"
    if not rolled_out:
        primary: dict[str, Any] = next(
            (dict(d) for d in deployments if d.get("status") == "PRIMARY"), {}
        )
        reason += (
            f", deployment to {short_task_definition(str(primary.get('taskDefinition', '')))}"
            f" {str(primary.get('rolloutState', 'IN_PROGRESS')).lower()}"
            f" ({len(deployments)} deployments)"
        )
    events = description.get("events", [])
    if events:
        reason += f" (last event: {events[0]['message']})"
    return reason


def check_services(
    clients: Clients,
    spec: EnvironmentSpec,
    registries: dict[str, str],
    state: ServicesState,
    schedule: PollSchedule,
    max_workers: int,
) -> ServicesState:
    """Ready when every service runs desiredCount tasks of a completed deployment, all of them
    registered in Cloud Map, and the Cloud Map operations of the build (TTL updates) succeeded."""
    operations = pending_operations(clients, state.operations, max_workers)
    descriptions = describe_services(
        clients, spec.cluster, (s.ecs_service_name for s in spec.services)
    )
    registered = pmap(
        lambda s: registered_count(clients, registries[s.name]), spec.services, max_workers
    )
    counts = dict(zip((s.name for s in spec.services), registered, strict=True))
    reasons = [
        reason
        for service in spec.services
        if (
            reason := _not_ready_reason(
                service, descriptions.get(service.ecs_service_name), counts[service.name]
            )
        )
    ]
    if operations:
        reasons.append(f"Cloud Map operations not finished: {', '.join(operations[:10])}")
    poll = state.poll.next(schedule)
    if not reasons:
        return state.model_copy(
            update={"ready": True, "poll": poll, "operations": [], "message": "all services ready"}
        )
    message = (
        f"{len(reasons)} of {len(spec.services)} services not ready after {poll.attempt} checks"
        f" (about {schedule.budget_seconds()} s allowed): " + "; ".join(reasons[:20])
    )
    if len(reasons) > 20:
        message += f"; and {len(reasons) - 20} more"
    return state.model_copy(
        update={"ready": False, "poll": poll, "operations": operations, "message": message}
    )


def pending_operations(clients: Clients, operation_ids: list[str], max_workers: int) -> list[str]:
    """The Cloud Map operations not yet SUCCESS; CloudMapOperationFailed if one FAILED."""

    def status(operation_id: str) -> dict[str, Any]:
        with aws_errors(f"GetOperation {operation_id}"):
            return dict(
                clients.servicediscovery.get_operation(OperationId=operation_id)["Operation"]
            )

    answers = pmap(status, operation_ids, max_workers)
    failed = [op for op in answers if op.get("Status") == "FAIL"]
    if failed:
        raise CloudMapOperationFailed(
            "; ".join(
                f"Cloud Map operation {op.get('Id')} ({op.get('Type')} {op.get('Targets')}) FAILED:"
                f" {op.get('ErrorCode', 'UNKNOWN')}: {op.get('ErrorMessage', '')}"
                for op in failed[:10]
            )
        )
    return [
        op_id for op_id, op in zip(operation_ids, answers, strict=True) if op["Status"] != "SUCCESS"
    ]
