"""ECS Fargate services attached to their Cloud Map registries, and their readiness."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from envbuild_lambda.errors import ServiceConflict, aws_errors
from envbuild_lambda.pacing import RateLimiter
from envbuild_lambda.parallel import pmap
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
                clientToken=spec.request_token(
                    "ecs-service", spec.cluster_name, service.name, build or "", max_length=36
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
    """Create the spec's ECS services that do not exist (CreateService paced at
    ``writes_per_second``, the ECS service-modification quota); adopt the ACTIVE ones."""
    pace = RateLimiter(writes_per_second, burst=writes_per_second)
    existing = describe_services(clients, spec.cluster, (s.ecs_service_name for s in spec.services))
    actions: dict[str, str] = {}
    to_create: list[Service] = []
    for service in spec.services:
        current = existing.get(service.ecs_service_name)
        status = current["status"] if current else "INACTIVE"
        if current and status == "ACTIVE":
            _check_adoptable(current, service, spec, registry_arn(caller, registries[service.name]))
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
    # Nothing new to start (a re-run): check at once instead of waiting a task's start-up time.
    poll = Poll.start(schedule, first_wait=None if to_create else 0)
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
    if running == service.desiredCount and registered == service.desiredCount:
        return None
    reason = f"{name}: {running}/{service.desiredCount} tasks running, {registered}/{service.desiredCount} registered in Cloud Map"
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
    """Ready when every service runs desiredCount tasks and all of them are registered in Cloud Map."""
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
    poll = state.poll.next(schedule)
    if not reasons:
        return state.model_copy(
            update={"ready": True, "poll": poll, "message": "all services ready"}
        )
    message = (
        f"{len(reasons)} of {len(spec.services)} services not ready after {poll.attempt} checks"
        f" (about {schedule.budget_seconds()} s allowed): " + "; ".join(reasons[:20])
    )
    if len(reasons) > 20:
        message += f"; and {len(reasons) - 20} more"
    return state.model_copy(update={"ready": False, "poll": poll, "message": message})
