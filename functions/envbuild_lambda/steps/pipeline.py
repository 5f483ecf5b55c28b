"""The pipelined build (issue 18): each ECS service is created as soon as its task definition is
registered and its registry exists, instead of after the last task definition.

Two steps of the state machine use it, both in the RegisterTaskDefinitions function:

- ``while_namespace_is_created`` (the Parallel's second branch): task definitions, in spec order,
  for a time budget about the namespace operation's usual minute (the registries wait for it,
  the task definitions need not); the rest is left to the loop.
- ``advance`` (the loop "Register Task Definitions And Create Services", after the registries
  exist): one invocation works for at most the budget, registering the remaining task
  definitions (paced at the RegisterTaskDefinition quota) on one thread while another creates,
  in spec order, each missing ECS service whose task definition is registered (paced at the
  CreateService quota): those registered earlier first, then each one as it is registered.

What the loop carries between invocations (``Pipeline``) is the service name -> "family:revision"
mapping every later step reads anyway, and two counters: the services whose ECS service is done
are always a prefix of the spec's services (they are handled in spec order), so one number says
where the next invocation starts. The loop only *creates* missing services; everything done once
(an existing service's update or retag, the registries' updates, static instances, autoscaling,
removals, the report of what changed, what a rollback restores) stays in Create Services, which
runs once after the loop and counts a service tagged with this build (``envbuild:build``) as
created by it. A retried invocation repeats nothing: ``task_definitions.register`` compares with
the family's latest revision, and a service that exists is left to Create Services.
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from envbuild_lambda import pacing
from envbuild_lambda.errors import AwsUnavailable
from envbuild_lambda.pacing import RateLimiter
from envbuild_lambda.state import Pipeline
from envbuild_lambda.steps import record, task_definitions
from envbuild_lambda.steps import services as service_steps

if TYPE_CHECKING:
    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service
    from envbuild_lambda.steps.record import EnvironmentRecord

#: Tries of one task definition's registration that AWS answers 5xx (``_register_one``).
UNAVAILABLE_ATTEMPTS = 3


def max_invocations(services: int, budget_seconds: int, writes_per_second: int) -> int:
    """The loop's bound: twice the invocations the task definitions need at the quota, plus 2
    (a throttled account, a retried invocation)."""
    per_invocation = max(1, budget_seconds * writes_per_second)
    return 2 * math.ceil(services / per_invocation) + 2


def _register_one(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    service: Service,
    recorded: EnvironmentRecord | None,
    build: str | None,
    pace: RateLimiter,
) -> str:
    """``task_definitions.register`` with the spec's own tags and retention for the service (as
    ``register_all`` does). A 5xx (AwsUnavailable: RegisterTaskDefinition is sent once, it may
    have been applied) is tried again here after 1, then 2 s, at most UNAVAILABLE_ATTEMPTS
    times: ``register`` compares with the family's latest revision first, so a revision that
    was registered is not registered twice. One service at a time, so an invocation would
    otherwise spend a whole Retry of the state on each 5xx."""
    timer = pacing.TIMER
    for attempt in range(UNAVAILABLE_ATTEMPTS):
        try:
            ref = task_definitions.register(
                clients,
                caller,
                spec.environment,
                service,
                spec.executionRoleArn or "",
                spec.taskRoleArn or "",
                build,
                pace,
                log_retention_days=service.effective_log_retention(spec.logRetentionDays),
                spec_tags=service.effective_tags(spec.tags),
                removed_overrides=record.removed_overrides(recorded, service),
            )
        except AwsUnavailable:
            if attempt == UNAVAILABLE_ATTEMPTS - 1:
                raise
            timer.sleep_until(timer.now() + float(2**attempt))
        else:
            return ref.taskDefinition
    raise AssertionError("unreachable")  # pragma: no cover


def while_namespace_is_created(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    recorded: EnvironmentRecord | None,
    build: str | None,
    budget_seconds: int,
    writes_per_second: int = 1,
) -> Pipeline:
    """Task definitions in spec order for ``budget_seconds`` (about the namespace operation's
    usual minute: the registries wait for it, the task definitions need not). Not stopped at
    the operation's end: the task definitions' quota is the build's bottleneck, so the loop
    loses no registration second when this branch ends a few seconds after the registries
    exist; a namespace slower than the budget leaves the registrations idle meanwhile."""
    timer = pacing.TIMER
    deadline = timer.now() + budget_seconds
    pace = RateLimiter(writes_per_second, burst=writes_per_second, from_call_end=True)
    registered: dict[str, str] = {}
    for service in spec.services:
        if timer.now() >= deadline:
            break
        registered[service.name] = _register_one(
            clients, caller, spec, service, recorded, build, pace
        )
    return Pipeline(
        taskDefinitions=registered,
        maxInvocations=max_invocations(len(spec.services), budget_seconds, writes_per_second),
    )


def advance(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    recorded: EnvironmentRecord | None,
    registries: dict[str, str],
    state: Pipeline,
    build: str | None,
    budget_seconds: int,
    task_definition_writes_per_second: int = 1,
    service_writes_per_second: int = 5,
) -> Pipeline:
    """One invocation of the loop (module docstring): returns where the next one starts."""
    timer = pacing.TIMER
    deadline = timer.now() + budget_seconds
    registered = dict(state.taskDefinitions)
    # Spaced from the end of each call: the two threads' calls share the invocation's time.
    td_pace = RateLimiter(
        task_definition_writes_per_second,
        burst=task_definition_writes_per_second,
        from_call_end=True,
    )
    service_pace = RateLimiter(
        service_writes_per_second, burst=service_writes_per_second, from_call_end=True
    )
    changed = threading.Condition()
    stop = threading.Event()
    registering = [True]  # the registering thread is still at work
    errors: list[BaseException] = []

    def register_rest() -> None:
        try:
            for service in spec.services:
                if service.name in registered:
                    continue
                if stop.is_set() or timer.now() >= deadline:
                    break
                revision = _register_one(clients, caller, spec, service, recorded, build, td_pace)
                with changed:
                    registered[service.name] = revision
                    changed.notify_all()
        except BaseException as error:  # handed to the invocation's own thread, raised there
            errors.append(error)
        finally:
            with changed:
                registering[0] = False
                changed.notify_all()

    done = state.servicesDone
    thread = _thread(register_rest)
    try:
        while done < len(spec.services) and timer.now() < deadline:
            service = spec.services[done]
            with changed:
                while service.name not in registered and registering[0]:
                    changed.wait()
                revision = registered.get(service.name)
            if revision is None:  # registration stopped (budget spent, or it failed)
                break
            create_if_missing(
                clients, caller, spec, service, registries, revision, build, service_pace
            )
            done += 1
    finally:
        stop.set()
        thread.join()
    if errors:
        raise errors[0]
    return state.model_copy(
        update={
            "taskDefinitions": registered,
            "servicesDone": done,
            "invocation": state.invocation + 1,
            "done": done == len(spec.services),
        }
    )


def _thread(body: Callable[[], None]) -> threading.Thread:
    """``body`` on a thread of its own, in a copy of the caller's context (as parallel.pmap)."""
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(body,), daemon=True)
    thread.start()
    return thread


def create_if_missing(
    clients: Clients,
    caller: Caller,
    spec: EnvironmentSpec,
    service: Service,
    registries: dict[str, str],
    task_definition: str,
    build: str | None,
    pace: RateLimiter,
) -> bool:
    """CreateService if the ECS service does not exist (or is INACTIVE); True if created. One
    that exists (ACTIVE or DRAINING) is left to Create Services, which converges it or names the
    conflict."""
    current = service_steps.describe_services(clients, spec.cluster, [service.ecs_service_name])
    found = current.get(service.ecs_service_name)
    if found is not None and found.get("status") != "INACTIVE":
        return False
    service_steps.create_service(
        clients, caller, spec, service, registries[service.name], task_definition, build, pace
    )
    return True
