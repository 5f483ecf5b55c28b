"""ECS services that really run tasks: Fargate tasks with awsvpc ENIs, registered in Cloud Map.

moto creates services whose tasks never start (runningCount stays 0).  Here the service scheduler
starts ``desiredCount`` tasks, moves them through their lifecycle on the World's clock, registers
running tasks in the service's Cloud Map registries and keeps the counts in DescribeServices.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import itertools
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from envbuild_emulator.moto_internals import MotoInternalsChanged, lookup

from ._state import BackendState, Timers, state_of
from .dns import Route53

if TYPE_CHECKING:
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.subnets import Subnet
    from moto.ecs.models import EC2ContainerServiceBackend, Service, Task, TaskDefinition

    from .world import World

__all__ = ["EcsModel"]

_ECS = "moto.ecs.models"
# A running Fargate task's stop: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
# RUNNING -> DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED; the model shows DEACTIVATING
# until ``task_stop_seconds`` later the task is STOPPED.
_PENDING_STATES = ("PROVISIONING", "PENDING", "ACTIVATING")
# "The service scheduler ... incrementally increase[s] the time between restart attempts" when
# tasks keep failing to start (service throttle logic,
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-throttle-logic.html).
# AWS gives no exact schedule: the model waits 10 s after the first failure, doubling up to 15 min.
_RETRY_FIRST_SECONDS = 10.0
_RETRY_MAX_SECONDS = 900.0
#: a service whose tasks found no free address tries to place them again after this long
_PLACEMENT_RETRY_SECONDS = 60.0
# The deployment circuit breaker's reason, as ECS words it (see EcsModel._circuit_breaker).
BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."


def _show(target: object, **fields: object) -> None:
    """Set response fields moto's models do not declare (its serializer reads attributes by
    their snake_case names, e.g. ``stop_code`` -> ``stopCode``)."""
    for name, value in fields.items():
        setattr(target, name, value)


@dataclass
class _TaskRun:
    task: Task
    subnet_id: str
    ip: str
    eni_id: str
    family: str
    availability_zone: str
    created: float
    stop_code: str | None = None
    registered: list[tuple[str, str]] = field(default_factory=list)  # (sd region key, service id)
    stopping: bool = False
    deployment: str = ""  # the id of the deployment that started the task
    #: the essential containers' health check (None: the task has none) and the task's health
    health_check: dict[str, Any] | None = None
    health: str = "UNKNOWN"

    @property
    def task_id(self) -> str:
        return str(self.task.id)


@dataclass
class _ServiceRun:
    service: Service
    cluster_name: str
    tasks: list[_TaskRun] = field(default_factory=list)
    subnet_cursor: int = 0
    failures: int = 0
    retry_at: float | None = None
    deleted: bool = False
    steady_reported: bool = False
    #: the task definition of the last deployment that COMPLETED (what a rollback returns to)
    completed_task_definition: str | None = None


class EcsState(BackendState):
    def __init__(self, owner: object) -> None:
        super().__init__(owner)
        self.runs: list[_ServiceRun] = []

    def run_of(self, service: object) -> _ServiceRun | None:
        for run in self.runs:
            if run.service is service:
                return run
        return None

    def run_of_task(self, task: object) -> tuple[_ServiceRun, _TaskRun] | None:
        for run in self.runs:
            for task_run in run.tasks:
                if task_run.task is task:
                    return run, task_run
        return None


def _probe_names(overrides: dict[str, Any] | None) -> list[str] | None:
    """The names envbuild's DNS probe resolves (its container override), or None."""
    for container in (overrides or {}).get("containerOverrides") or []:
        for variable in container.get("environment") or []:
            if variable.get("name") == "ENVBUILD_PROBE_NAMES":
                return str(variable.get("value", "")).split()
    return None


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


class EcsModel:
    """The ECS service scheduler; its methods wrap moto's (installed by World)."""

    def __init__(self, world: World) -> None:
        self._world = world

    def state(self, backend: EC2ContainerServiceBackend) -> EcsState:
        return state_of(backend, self._world, EcsState)

    # ------------------------------------------------------------------ wrapped backend calls
    def after_create_service(self, backend: EC2ContainerServiceBackend, service: Service) -> None:
        """https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_services.html: the
        service scheduler launches desiredCount tasks and keeps that many running."""
        if not self._modelled(service):
            return
        state = self.state(backend)
        run = _ServiceRun(service=service, cluster_name=service.cluster_name)
        state.runs.append(run)
        self._reconcile(backend, run, self._world.clock.now())

    def after_update_service(
        self,
        backend: EC2ContainerServiceBackend,
        service: Service,
        *,
        force_new_deployment: bool = False,
    ) -> None:
        """UpdateService changes desiredCount: the scheduler starts or stops tasks.  (moto sets
        runningCount = desiredCount at once; the model puts the real counts back.)  A new task
        definition, ``forceNewDeployment`` or a new network configuration starts a new
        deployment (rolling update): see ``_new_deployment``."""
        state = self.state(backend)
        run = state.run_of(service)
        if run is None:
            if not self._modelled(service):
                return
            run = _ServiceRun(service=service, cluster_name=service.cluster_name)
            state.runs.append(run)
        self._new_deployment(backend, service, force=force_new_deployment)
        if service.deployments:
            service.deployments[0]["desiredCount"] = service.desired_count
        run.steady_reported = False
        run.failures, run.retry_at = 0, None
        self._reconcile(backend, run, self._world.clock.now())

    def _new_deployment(
        self, backend: EC2ContainerServiceBackend, service: Service, *, force: bool = False
    ) -> None:
        """UpdateService with another task definition: "a new deployment is triggered"; the
        rolling update (minimumHealthyPercent 100, maximumPercent 200 by default) starts the new
        tasks, and stops the old deployment's tasks once the new ones are running and healthy
        (registered in Cloud Map); the old deployment (status ACTIVE) then disappears and the
        PRIMARY one is COMPLETED.
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html and
        API_Deployment.html.  (moto keeps one deployment and only swaps the task definition.)"""
        if not service.deployments or service.task_definition is None:
            return
        # moto stores UpdateService's taskDefinition as given ("family:3"); AWS reports the ARN.
        definition = backend.describe_task_definition(str(service.task_definition))
        service.task_definition = definition.arn
        if service.deployments[0].get("taskDefinition") == definition.arn and not force:
            return
        self._start_deployment(service, definition.arn)

    def _start_deployment(self, service: Service, task_definition_arn: str) -> dict[str, Any]:
        """A new PRIMARY deployment of ``task_definition_arn``; the previous PRIMARY becomes
        ACTIVE (its tasks are stopped once the new ones are up: see ``_reconcile``)."""
        primary = service.deployments[0]
        stamp = _utc(self._world.timestamp(self._world.clock.now()))
        primary["status"] = "ACTIVE"
        primary["updatedAt"] = stamp
        deployment = {
            **primary,
            "id": f"ecs-svc/{uuid.uuid4().int % 10**19:019d}",
            "status": "PRIMARY",
            "taskDefinition": task_definition_arn,
            "desiredCount": service.desired_count,
            "runningCount": 0,
            "pendingCount": 0,
            "failedTasks": 0,
            "rolloutState": "IN_PROGRESS",
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        deployment["rolloutStateReason"] = f"ECS deployment {deployment['id']} in progress."
        service.deployments.insert(0, deployment)
        return deployment

    def after_delete_service(self, backend: EC2ContainerServiceBackend, service: Service) -> None:
        """DeleteService (desiredCount 0 or force): the service's tasks are stopped and
        deregistered.  moto already removed the service's counts from the cluster."""
        run = self.state(backend).run_of(service)
        if run is None:
            return
        now = self._world.clock.now()
        run.deleted = True
        service.running_count = 0
        service.pending_count = 0
        draining = False
        for task_run in list(run.tasks):
            if task_run.task.desired_status == "RUNNING":
                draining = draining or task_run.task.last_status == "RUNNING"
                self._stop(
                    backend,
                    run,
                    task_run,
                    now,
                    "ServiceSchedulerInitiated",
                    self._scaling_reason(service),
                )
        # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html: with
        # tasks still to clean up the service is DRAINING; once they have all stopped it becomes
        # INACTIVE (moto marks it INACTIVE at once).
        if draining:
            service.status = "DRAINING"

            def inactive(at: float) -> None:
                if service.status == "DRAINING":
                    service.status = "INACTIVE"

            self._state_timers(backend).add(now + self._world.latencies.task_stop_seconds, inactive)

    def stop_task(
        self, backend: EC2ContainerServiceBackend, cluster_str: str, task_str: str, reason: str
    ) -> Task | None:
        """StopTask on a service's task: deregistered, stopped, then replaced by the scheduler.
        Returns None when the task is not one of the model's (moto handles it)."""
        task_id = task_str.split("/")[-1]
        cluster = cluster_str.split("/")[-1]
        for run in self.state(backend).runs:
            for task_run in run.tasks:
                if task_run.task_id == task_id and run.cluster_name == cluster:
                    now = self._world.clock.now()
                    if task_run.task.desired_status == "RUNNING":
                        self._stop(
                            backend,
                            run,
                            task_run,
                            now,
                            "UserInitiated",
                            reason or "Task stopped by user",
                        )
                        self._reconcile(backend, run, now)
                    return task_run.task
        return None

    def filter_list_tasks(
        self,
        backend: EC2ContainerServiceBackend,
        tasks: list[Task],
        service_name: str | None,
        desired_status: str | None,
    ) -> list[Task]:
        """ListTasks: ``serviceName`` keeps the tasks of that service; "The default status
        filter is RUNNING" (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html)."""
        if service_name:
            name = service_name.split("/")[-1]
            wanted = {
                id(task_run.task)
                for run in self.state(backend).runs
                if run.service.name == name
                for task_run in run.tasks
            }
            tasks = [task for task in tasks if id(task) in wanted]
        status = desired_status or "RUNNING"
        return [task for task in tasks if task.desired_status == status]

    # ------------------------------------------------------------------ CreateService fields
    #: What CreateService takes that moto's backend drops, kept on the service as DescribeServices
    #: returns it (UpdateService already sets them: moto sets every parameter it is given).
    KEPT_CREATE_FIELDS = (
        "enableExecuteCommand",
        "healthCheckGracePeriodSeconds",
        "availabilityZoneRebalancing",
        "placementStrategy",
        "placementConstraints",
    )

    def create_service_fields(self, response: Any) -> dict[str, Any]:
        """CreateService's capacity provider strategy, checked as ECS checks it: not with a
        launch type, only providers associated with the cluster
        (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html)."""
        fields: dict[str, Any] = {
            name: response._get_param(name)
            for name in self.KEPT_CREATE_FIELDS
            if response._get_param(name) is not None
        }
        strategy = response._get_param("capacityProviderStrategy")
        if strategy:
            invalid = lookup("moto.ecs.exceptions", "InvalidParameterException")
            if response._get_param("launchType"):
                raise invalid(
                    "Specifying both a launch type and capacity provider strategy is not supported."
                )
            backend = response.ecs_backend
            cluster = backend._get_cluster(response._get_param("cluster", "default"))
            associated = set(cluster.capacity_providers or [])
            for item in strategy:
                if item.get("capacityProvider") not in associated:
                    raise invalid(
                        "The specified capacity provider strategy cannot contain a capacity"
                        " provider that is not associated with the cluster. Associate the"
                        " capacity provider with the cluster or specify a valid capacity"
                        " provider and try again."
                    )
            fields["capacityProviderStrategy"] = [
                {
                    "capacityProvider": item["capacityProvider"],
                    "weight": int(item.get("weight", 0)),
                    "base": int(item.get("base", 0)),
                }
                for item in strategy
            ]
        return fields

    @staticmethod
    def apply_service_fields(service: Service, fields: dict[str, Any] | None) -> None:
        """Keep CreateService's fields on the new service (a capacity provider strategy replaces
        the launch type moto defaults to EC2; ECS describes no launchType then)."""
        if not fields:
            if getattr(service, "enable_execute_command", None) is None:
                service.enable_execute_command = False  # ECS's default, described
            return
        strategy = fields.get("capacityProviderStrategy")
        if strategy:
            service.capacity_provider_strategy = strategy
            service.launch_type = None
            for deployment in service.deployments:
                deployment["launchType"] = None
                deployment["capacityProviderStrategy"] = strategy
        service.enable_execute_command = bool(fields.get("enableExecuteCommand", False))
        for name in ("healthCheckGracePeriodSeconds", "availabilityZoneRebalancing",
                     "placementStrategy", "placementConstraints"):  # fmt: skip
            if name in fields:
                setattr(service, _snake(name), fields[name])

    # ------------------------------------------------------------------ scheduler
    @staticmethod
    def _fargate(service: Service) -> bool:
        """Runs on Fargate: the FARGATE launch type, or a strategy of Fargate providers."""
        strategy = getattr(service, "capacity_provider_strategy", None) or []
        if service.launch_type == "FARGATE":
            return True
        return bool(strategy) and all(
            item.get("capacityProvider") in ("FARGATE", "FARGATE_SPOT") for item in strategy
        )

    @classmethod
    def _modelled(cls, service: Service) -> bool:
        awsvpc = (service.network_configuration or {}).get("awsvpcConfiguration") or {}
        return (
            cls._fargate(service)
            and bool(awsvpc.get("subnets"))
            and service.task_definition is not None
            and service.status == "ACTIVE"
        )

    def _reconcile(self, backend: EC2ContainerServiceBackend, run: _ServiceRun, now: float) -> None:
        """Start or stop tasks until the service has desiredCount of them."""
        service = run.service
        if run.deleted:
            self._refresh_counts(backend, run)
            return
        primary = service.deployments[0]["id"] if service.deployments else ""
        live = [t for t in run.tasks if t.task.desired_status == "RUNNING"]
        active = [t for t in live if not primary or t.deployment in ("", primary)]
        missing = int(service.desired_count) - len(active)
        failed = bool(service.deployments) and service.deployments[0]["rolloutState"] == "FAILED"
        if missing > 0:
            if failed:
                pass  # the circuit breaker stopped this deployment: no more launches
            elif run.retry_at is not None and now < run.retry_at:
                pass  # a retry is scheduled
            else:
                run.retry_at = None
                started = []
                for _ in range(missing):
                    task_run = self._launch(backend, run, now)
                    if task_run is None:
                        break
                    started.append(task_run)
                if started:
                    self._event(
                        service,
                        now,
                        f"(service {service.name}) has started {len(started)} tasks: "
                        + " ".join(f"(task {t.task_id})" for t in started)
                        + ".",
                    )
                if len(started) < missing:
                    self._unplaced(backend, run, now)
        elif missing < 0:
            # Stop tasks that are not running yet first, then the newest running ones.
            order = sorted(
                active,
                key=lambda t: (t.task.last_status == "RUNNING", t.created),
            )
            stopped = order[:-missing]
            for task_run in stopped:
                self._stop(
                    backend,
                    run,
                    task_run,
                    now,
                    "ServiceSchedulerInitiated",
                    self._scaling_reason(service),
                )
            self._event(
                service,
                now,
                f"(service {service.name}) has stopped {len(stopped)} running tasks: "
                + " ".join(f"(task {t.task_id})" for t in stopped)
                + ".",
            )
        old = [t for t in live if t not in active]
        healthy = all(
            t.task.last_status == "RUNNING"
            and (t.registered or not service.service_registries)
            and self._ready(t)
            for t in active
        )
        if old and missing == 0 and healthy:  # the new deployment is up: stop the old one
            for task_run in old:
                self._stop(
                    backend,
                    run,
                    task_run,
                    now,
                    "ServiceSchedulerInitiated",
                    f"Scaling activity initiated by (deployment {task_run.deployment})",
                )
            self._event(
                service,
                now,
                f"(service {service.name}) has stopped {len(old)} running tasks: "
                + " ".join(f"(task {t.task_id})" for t in old)
                + ".",
            )
        self._refresh_counts(backend, run)

    def _unplaced(self, backend: EC2ContainerServiceBackend, run: _ServiceRun, now: float) -> None:
        """No subnet of the service has a free address for a task's ENI: a service event, not an
        API error; the scheduler tries again later. AWS documents the form of the event, "(service
        service-name) was unable to place a task. Reason: ..." ("Service event messages", Amazon
        ECS Developer Guide, https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages.html),
        not the wording of this reason."""
        service = run.service
        subnets = ", ".join(service.network_configuration["awsvpcConfiguration"]["subnets"])
        self._event(
            service,
            now,
            f"(service {service.name}) was unable to place a task. Reason: no free IPv4 address"
            f" in subnets {subnets} for the task's network interface.",
        )
        run.retry_at = now + _PLACEMENT_RETRY_SECONDS
        self._refresh_counts(backend, run)
        self._state_timers(backend).add(run.retry_at, lambda t: self._reconcile(backend, run, t))

    def _subnet_for_task(self, backend: EC2ContainerServiceBackend, run: _ServiceRun) -> str | None:
        """The next of the service's subnets in turn that has a free address (None: none has)."""
        subnets: list[str] = list(
            run.service.network_configuration["awsvpcConfiguration"]["subnets"]
        )
        ec2 = self._ec2(backend)
        for offset in range(len(subnets)):
            subnet_id = subnets[(run.subnet_cursor + offset) % len(subnets)]
            if self._has_free_ip(ec2, ec2.get_subnet(subnet_id)):
                run.subnet_cursor += offset + 1
                return subnet_id
        return None

    def _launch(
        self, backend: EC2ContainerServiceBackend, run: _ServiceRun, now: float
    ) -> _TaskRun | None:
        world = self._world
        service = run.service
        task_definition: TaskDefinition = backend.describe_task_definition(
            str(service.task_definition)
        )
        awsvpc: dict[str, Any] = dict(service.network_configuration["awsvpcConfiguration"])
        subnet_id = self._subnet_for_task(backend, run)
        if subnet_id is None:
            return None
        security_groups: list[str] = list(awsvpc.get("securityGroups") or [])

        task_cls = lookup(_ECS, "Task")
        cluster = backend.clusters[run.cluster_name]
        deployment_id = service.deployments[0]["id"] if service.deployments else "ecs-svc/0"
        # moto's Task makes its own awsvpc ENI (random IP outside the subnet, and it crashes
        # when the VPC has DNS hostnames disabled): hand it a view of the task definition
        # without network mode and attach the ENI here.
        definition_view = copy.copy(task_definition)
        definition_view.network_mode = None
        task: Task = task_cls(
            cluster=cluster,
            task_definition=definition_view,
            container_instance_arn=None,
            resource_requirements=None,  # only EC2 placement uses them
            backend=backend,
            group=f"service:{service.name}",
            launch_type="FARGATE",
            started_by=deployment_id,
            tags=list(service.tags or []) if service.propagate_tags == "SERVICE" else [],
            networking_configuration=None,
            platform_version=service.platform_version or "1.4.0",
        )
        if not hasattr(task, "_transitions"):
            raise MotoInternalsChanged(
                "envbuild emulator: moto.ecs.models.Task no longer has ManagedState._transitions"
            )
        # The model drives the lifecycle itself: no moto-managed transitions for these tasks.
        task._transitions = []
        task.last_status = "PROVISIONING"
        task.desired_status = "RUNNING"
        task.network_configuration = {
            "awsvpcConfiguration": {
                **awsvpc,
                "subnets": [subnet_id],
                "securityGroups": security_groups,
            }
        }

        subnet, eni_id, ip = self._place(
            backend, cluster, task, task_definition, subnet_id, security_groups, now
        )
        _show(
            task,
            connectivity="CONNECTED",
            connectivity_at=task.created_at,
            health_status="UNKNOWN",
            platform_family="Linux",
            version=1,
        )
        for container in task.containers:
            container.network_interfaces = [
                {"attachmentId": task.attachments[0]["id"], "privateIpv4Address": ip}
            ]

        task_run = _TaskRun(
            task,
            subnet_id,
            ip,
            eni_id,
            task_definition.family,
            subnet.availability_zone,
            now,
            deployment=deployment_id,
        )
        run.tasks.append(task_run)
        timers = self.state(backend).timers
        start = world.latencies.task_start_seconds
        timers.add(now + start / 2, lambda at: self._to_pending(backend, run, task_run, at))
        timers.add(now + start, lambda at: self._to_running(backend, run, task_run, at))
        return task_run

    def _to_pending(
        self, backend: EC2ContainerServiceBackend, run: _ServiceRun, task_run: _TaskRun, at: float
    ) -> None:
        task = task_run.task
        if task.desired_status != "RUNNING" or task.last_status != "PROVISIONING":
            return
        task.last_status = "PENDING"
        _show(task, pull_started_at=_utc(self._world.timestamp(at)))
        task.attachments[0]["status"] = "ATTACHED"

    def _to_running(
        self, backend: EC2ContainerServiceBackend, run: _ServiceRun, task_run: _TaskRun, at: float
    ) -> None:
        task = task_run.task
        if task.desired_status != "RUNNING" or task.last_status not in _PENDING_STATES:
            return
        world = self._world
        service = run.service
        stamp = _utc(world.timestamp(at))
        revision = str(getattr(task, "task_definition_arn", "")).rsplit("/", 1)[-1]
        reason = world.faults.task_start_failure(service.name, task_run.family, revision)
        if reason is not None:
            # The task never reaches RUNNING: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-errors.html
            _show(task, pull_stopped_at=stamp)
            self._stop(backend, run, task_run, at, "TaskFailedToStart", reason, immediately=True)
            for container in task.containers:
                _show(container, reason=reason)
            run.failures += 1
            delay = min(_RETRY_FIRST_SECONDS * 2 ** (run.failures - 1), _RETRY_MAX_SECONDS)
            run.retry_at = at + delay
            self._event(
                service,
                at,
                f"(service {service.name}) failed to launch a task with (error {reason}).",
            )
            if run.failures >= 3:
                self._event(
                    service,
                    at,
                    f"(service {service.name}) is unable to consistently start tasks "
                    "successfully. For more information, see the Troubleshooting section of "
                    "the Amazon ECS Developer Guide.",
                )
            self._state_timers(backend).add(
                run.retry_at, lambda t: self._reconcile(backend, run, t)
            )
            self._refresh_counts(backend, run)
            self._circuit_breaker(backend, run, at)
            return
        task.last_status = "RUNNING"
        _show(task, pull_stopped_at=stamp, started_at=stamp)
        for container in task.containers:
            container.last_status = "RUNNING"
        run.failures, run.retry_at = 0, None
        self._start_health_check(backend, run, task_run, at, revision)
        self._refresh_counts(backend, run)
        if not service.service_registries:
            self._reconcile(backend, run, at)
        if service.service_registries:
            self._state_timers(backend).add(
                at + world.latencies.registration_seconds,
                lambda t: self._register(backend, run, task_run, t),
            )

    # ------------------------------------------------------------------ container health checks
    def _start_health_check(
        self,
        backend: EC2ContainerServiceBackend,
        run: _ServiceRun,
        task_run: _TaskRun,
        at: float,
        revision: str,
    ) -> None:
        """A task whose essential container has a health check is UNKNOWN once RUNNING, then
        HEALTHY after the first passing check (startPeriod + interval), or UNHEALTHY after
        ``retries`` failing ones when the fault ``containers_unhealthy`` is armed for it.
        https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html"""
        task = task_run.task
        check = self._health_check_of(backend, task)
        if check is None:
            return
        task_run.health_check = check
        task_run.health = "UNKNOWN"
        _show(task, health_status="UNKNOWN")
        for container in task.containers:
            _show(container, health_status="UNKNOWN")
        interval = int(check.get("interval") or 30)
        retries = int(check.get("retries") or 3)
        start = int(check.get("startPeriod") or 0)
        unhealthy = self._world.faults.container_unhealthy(
            run.service.name, task_run.family, revision
        )
        due = at + start + (interval * retries if unhealthy else interval)
        status = "UNHEALTHY" if unhealthy else "HEALTHY"
        self._state_timers(backend).add(
            due, lambda t: self._health_changed(backend, run, task_run, t, status)
        )

    def _health_check_of(
        self, backend: EC2ContainerServiceBackend, task: Task
    ) -> dict[str, Any] | None:
        try:
            definition = backend.describe_task_definition(str(task.task_definition_arn))
        except Exception:  # deregistered meanwhile: ECS keeps running the task
            return None
        for container in definition.container_definitions or []:
            check = container.get("healthCheck")
            if check and container.get("essential", True):
                return dict(check)
        return None

    def _health_changed(
        self,
        backend: EC2ContainerServiceBackend,
        run: _ServiceRun,
        task_run: _TaskRun,
        at: float,
        status: str,
    ) -> None:
        """ECS reports the task's health to Cloud Map (the registry's custom health check): an
        UNHEALTHY task leaves DNS; ECS then stops it ("Task failed container health checks")
        and the scheduler starts a replacement (counted by the circuit breaker)."""
        task = task_run.task
        if task.desired_status != "RUNNING" or task.last_status != "RUNNING":
            return
        task_run.health = status
        _show(task, health_status=status)
        for container in task.containers:
            _show(container, health_status=status)
        sd_backend = self._servicediscovery(backend)
        for _region, service_id in task_run.registered:
            sd_service = sd_backend.services.get(service_id)
            if sd_service is not None:
                self._world.cloudmap.set_health(sd_backend, sd_service, task_run.task_id, status)
        if status == "HEALTHY":
            self._refresh_counts(backend, run)
            self._reconcile(backend, run, at)  # a rolling update may now stop the old tasks
            return
        service = run.service
        self._event(
            service,
            at,
            f"(service {service.name}) (task {task_run.task_id}) failed container health checks.",
        )
        self._stop(
            backend,
            run,
            task_run,
            at,
            "ServiceSchedulerInitiated",
            "Task failed container health checks",
        )
        run.failures += 1
        delay = min(_RETRY_FIRST_SECONDS * 2 ** (run.failures - 1), _RETRY_MAX_SECONDS)
        run.retry_at = at + delay
        self._state_timers(backend).add(run.retry_at, lambda t: self._reconcile(backend, run, t))
        self._refresh_counts(backend, run)
        self._circuit_breaker(backend, run, at)

    @staticmethod
    def _ready(task_run: _TaskRun) -> bool:
        """Healthy, or without a health check (what ECS waits for in a deployment)."""
        return task_run.health_check is None or task_run.health == "HEALTHY"

    def _register(
        self, backend: EC2ContainerServiceBackend, run: _ServiceRun, task_run: _TaskRun, at: float
    ) -> None:
        """ECS registers a running task of a service with serviceRegistries in Cloud Map
        (instance id = task id) and reports it healthy through the custom health check.
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-discovery.html"""
        task = task_run.task
        if task.desired_status != "RUNNING" or task.last_status != "RUNNING":
            return
        if self._world.faults.registration_blocked(run.service.name):
            self._event(
                run.service,
                at,
                f"(service {run.service.name}) failed to register (task {task_run.task_id})"
                " in the Cloud Map service registry",
            )
            return
        sd_backend = self._servicediscovery(backend)
        for registry in run.service.service_registries:
            service_id = str(registry.get("registryArn", "")).rsplit("/", 1)[-1]
            sd_service = sd_backend.services.get(service_id)
            if sd_service is None:
                continue
            # A task with a health check is in DNS once it is HEALTHY (until then UNHEALTHY).
            health = "HEALTHY" if self._ready(task_run) else "UNHEALTHY"
            attributes = {
                "AWS_INSTANCE_IPV4": task_run.ip,
                "AVAILABILITY_ZONE": task_run.availability_zone,
                "AWS_INIT_HEALTH_STATUS": health,
                "ECS_CLUSTER_NAME": run.cluster_name,
                "ECS_SERVICE_NAME": run.service.name,
                "ECS_TASK_DEFINITION_FAMILY": task_run.family,
                "REGION": backend.region_name,
            }
            port = registry.get("port") or registry.get("containerPort")
            if port:
                attributes["AWS_INSTANCE_PORT"] = str(port)
            self._world.cloudmap.put_instance(
                sd_backend, sd_service, task_run.task_id, attributes, health_status=health
            )
            self._world.cloudmap.record_operation(
                sd_backend,
                "REGISTER_INSTANCE",
                {"INSTANCE": task_run.task_id, "SERVICE": service_id},
            )
            task_run.registered.append((backend.region_name, service_id))
        if task_run.registered and task_run.health_check is None:
            _show(task, health_status="HEALTHY")
        self._reconcile(backend, run, at)  # a rolling update may now stop the old tasks

    def _deregister(self, backend: EC2ContainerServiceBackend, task_run: _TaskRun) -> None:
        if not task_run.registered:
            return
        sd_backend = self._servicediscovery(backend)
        for _region, service_id in task_run.registered:
            sd_service = sd_backend.services.get(service_id)
            if sd_service is not None and self._world.cloudmap.remove_instance(
                sd_backend, sd_service, task_run.task_id
            ):
                self._world.cloudmap.record_operation(
                    sd_backend,
                    "DEREGISTER_INSTANCE",
                    {"INSTANCE": task_run.task_id, "SERVICE": service_id},
                )
        task_run.registered.clear()

    def _stop(
        self,
        backend: EC2ContainerServiceBackend,
        run: _ServiceRun,
        task_run: _TaskRun,
        now: float,
        stop_code: str,
        reason: str,
        *,
        immediately: bool = False,
    ) -> None:
        """Deregister first, then stop: RUNNING tasks show DEACTIVATING for task_stop_seconds."""
        task = task_run.task
        world = self._world
        self._deregister(backend, task_run)
        task.desired_status = "STOPPED"
        task_run.stop_code = stop_code
        _show(
            task, stop_code=stop_code, stopped_reason=reason, stopping_at=_utc(world.timestamp(now))
        )
        was_running = task.last_status == "RUNNING"
        if was_running and not immediately:
            task.last_status = "DEACTIVATING"
            self._state_timers(backend).add(
                now + world.latencies.task_stop_seconds,
                lambda at: self._stopped(backend, run, task_run, at),
            )
        else:
            self._stopped(backend, run, task_run, now)
        self._refresh_counts(backend, run)

    def _stopped(
        self, backend: EC2ContainerServiceBackend, run: _ServiceRun, task_run: _TaskRun, at: float
    ) -> None:
        task = task_run.task
        stamp = _utc(self._world.timestamp(at))
        task.last_status = "STOPPED"
        _show(task, stopped_at=stamp, execution_stopped_at=stamp)
        for container in task.containers:
            container.last_status = "STOPPED"
        for attachment in task.attachments:
            attachment["status"] = "DELETED"
        ec2 = self._ec2(backend)
        # The ENI may already be gone (deleted by the user), the subnet too.
        with contextlib.suppress(Exception):
            ec2.delete_network_interface(task_run.eni_id)
        with contextlib.suppress(Exception):
            ec2.get_subnet(task_run.subnet_id).del_subnet_ip(task_run.ip)
        self._refresh_counts(backend, run)

    # ------------------------------------------------------------------ counts and events
    def _refresh_counts(self, backend: EC2ContainerServiceBackend, run: _ServiceRun) -> None:
        """runningCount / pendingCount of the service (and of its cluster) follow the tasks."""
        service = run.service
        if run.deleted:
            return
        live = [t.task for t in run.tasks if t.task.desired_status == "RUNNING"]
        running = sum(1 for task in live if task.last_status == "RUNNING")
        pending = sum(1 for task in live if task.last_status in _PENDING_STATES)
        cluster = backend.clusters.get(run.cluster_name)
        if cluster is not None:
            cluster.running_tasks_count += running - int(service.running_count)
            cluster.pending_tasks_count += pending - int(service.pending_count)
        service.running_count = running
        service.pending_count = pending
        if service.deployments:
            self._refresh_deployments(run)
            deployment = service.deployments[0]
            primary_live = [t for t in run.tasks if t.task.desired_status == "RUNNING"]
            if len(service.deployments) > 1:
                primary_live = [t for t in primary_live if t.deployment == deployment["id"]]
            primary_running = sum(1 for t in primary_live if t.task.last_status == "RUNNING")
            primary_pending = sum(1 for t in primary_live if t.task.last_status in _PENDING_STATES)
            done = (
                primary_running == service.desired_count
                and primary_pending == 0
                and len(service.deployments) == 1
            )
            deployment.update(
                {
                    "desiredCount": service.desired_count,
                    "runningCount": primary_running,
                    "pendingCount": primary_pending,
                    "failedTasks": self._failed_tasks(run, deployment["id"]),
                }
            )
            if deployment["rolloutState"] != "FAILED":  # FAILED is final
                deployment.update(
                    {
                        "rolloutState": "COMPLETED" if done else "IN_PROGRESS",
                        "rolloutStateReason": (
                            f"ECS deployment {deployment['id']} completed."
                            if done
                            else f"ECS deployment {deployment['id']} in progress."
                        ),
                    }
                )
                if done:
                    run.completed_task_definition = str(deployment["taskDefinition"])
        registered_all = all(
            (t.registered or not service.service_registries) and self._ready(t)
            for t in run.tasks
            if t.task.desired_status == "RUNNING"
        )
        steady = (
            running == service.desired_count
            and pending == 0
            and registered_all
            and not any(t.task.last_status == "DEACTIVATING" for t in run.tasks)
        )
        if steady and not run.steady_reported:
            run.steady_reported = True
            self._event(
                service,
                self._world.clock.now(),
                f"(service {service.name}) has reached a steady state.",
            )
        elif not steady:
            run.steady_reported = False

    @staticmethod
    def _failed_tasks(run: _ServiceRun, deployment_id: str) -> int:
        """The deployment's tasks that failed to start (its ``failedTasks``)."""
        return sum(
            1
            for t in run.tasks
            if t.deployment == deployment_id
            and (t.stop_code == "TaskFailedToStart" or t.health == "UNHEALTHY")
        )

    @staticmethod
    def _refresh_deployments(run: _ServiceRun) -> None:
        """Old (ACTIVE) deployments show their tasks' counts and disappear once all their tasks
        have stopped; a FAILED one (rolled back) stays until the PRIMARY runs all its tasks."""
        service = run.service
        primary = service.deployments[0]
        kept = [primary]
        failed: list[dict[str, Any]] = []
        for deployment in service.deployments[1:]:
            tasks = [t for t in run.tasks if t.deployment == deployment["id"]]
            if all(t.task.last_status == "STOPPED" for t in tasks):
                if deployment.get("rolloutState") == "FAILED":
                    deployment.update({"desiredCount": 0, "runningCount": 0, "pendingCount": 0})
                    failed.append(deployment)
                    kept.append(deployment)
                continue
            live = [t for t in tasks if t.task.desired_status == "RUNNING"]
            deployment.update(
                {
                    "desiredCount": len(live),
                    "runningCount": sum(1 for t in live if t.task.last_status == "RUNNING"),
                    "pendingCount": sum(1 for t in live if t.task.last_status in _PENDING_STATES),
                }
            )
            kept.append(deployment)
        primary_tasks = [
            t.task
            for t in run.tasks
            if t.deployment == primary["id"] and t.task.desired_status == "RUNNING"
        ]
        primary_up = (
            sum(1 for task in primary_tasks if task.last_status == "RUNNING")
            == service.desired_count
            and not any(task.last_status in _PENDING_STATES for task in primary_tasks)
            and len(kept) == 1 + len(failed)
        )
        if primary_up:  # the rollback is up: the FAILED deployment goes too
            kept = [d for d in kept if not any(d is f for f in failed)]
        service.deployments[:] = kept

    def _circuit_breaker(
        self, backend: EC2ContainerServiceBackend, run: _ServiceRun, at: float
    ) -> None:
        """The deployment circuit breaker, after a task of the PRIMARY deployment failed to start.
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html:

        - It is on when the service's ``deploymentConfiguration.deploymentCircuitBreaker.enable``
          is true (CreateService/UpdateService; UpdateService without it keeps the last one).
        - "The failed task threshold [...] is 0.5 * desired task count", at least 3 and at most
          200: min(max(ceil(0.5 * desiredCount), 3), 200) tasks of the deployment that failed
          to start (its ``failedTasks``).  (AWS also counts tasks that fail health checks
          after RUNNING; the model's tasks fail only before RUNNING.)
        - On reaching it the deployment's ``rolloutState`` is FAILED, ``rolloutStateReason``
          "ECS deployment circuit breaker: tasks failed to start.", and a service event says so.
        - With ``rollback`` true, "ECS rolls back to the deployment that last completed": a new
          PRIMARY deployment of that task definition (the service's ``taskDefinition`` is set
          back to it), IN_PROGRESS and completing like any rolling deployment of the model; the
          FAILED one stays listed (ACTIVE) until the rollback's tasks run.  Without rollback, or
          when no deployment ever completed (a new service), the FAILED deployment launches no
          more tasks; the tasks of an older deployment keep running.
        """
        service = run.service
        if run.deleted or not service.deployments:
            return
        deployment = service.deployments[0]
        if deployment["rolloutState"] == "FAILED":
            return
        configuration = getattr(service, "deployment_configuration", None) or {}
        breaker = configuration.get("deploymentCircuitBreaker") or {}
        if not breaker.get("enable"):
            return
        threshold = min(max(math.ceil(0.5 * int(service.desired_count)), 3), 200)
        failed = self._failed_tasks(run, deployment["id"])
        if failed < threshold:
            return
        stamp = _utc(self._world.timestamp(at))
        deployment.update(
            {
                "failedTasks": failed,
                "rolloutState": "FAILED",
                "rolloutStateReason": BREAKER_REASON,
                "updatedAt": stamp,
            }
        )
        self._event(
            service,
            at,
            f"(service {service.name}) (deployment {deployment['id']}) deployment failed:"
            " tasks failed to start.",
        )
        previous = run.completed_task_definition
        if not breaker.get("rollback") or previous in (None, deployment["taskDefinition"]):
            return
        service.task_definition = previous
        rollback = self._start_deployment(service, str(previous))
        self._event(
            service,
            at,
            f"(service {service.name}) rolling back to"
            f" {str(previous).rsplit('/', 1)[-1]} (deployment {rollback['id']}).",
        )
        run.failures, run.retry_at = 0, None
        self._reconcile(backend, run, at)

    def _event(self, service: Service, at: float, message: str) -> None:
        # DescribeServices lists the newest events first.
        service.events.insert(
            0,
            {
                "id": str(uuid.uuid4()),
                "createdAt": _utc(self._world.timestamp(at)),
                "message": message,
            },
        )
        del service.events[100:]

    @staticmethod
    def _scaling_reason(service: Service) -> str:
        deployment = service.deployments[0]["id"] if service.deployments else "ecs-svc/0"
        return f"Scaling activity initiated by (deployment {deployment})"

    # ------------------------------------------------------------------ the DNS probe
    def run_probe(
        self,
        backend: EC2ContainerServiceBackend,
        cluster_str: str,
        task_definition_str: str,
        overrides: dict[str, Any] | None,
        started_by: str | None,
        tags: list[dict[str, str]] | None,
        network_configuration: dict[str, Any] | None,
    ) -> list[Task] | None:
        """RunTask of envbuild's DNS probe (a container whose overrides carry
        ENVBUILD_PROBE_NAMES): a one-off Fargate task that resolves each name through the VPC
        resolver, logs one line per name to its awslogs stream and exits 0, or 1 if a name did
        not resolve. None for any other task (moto's RunTask handles it)."""
        names = _probe_names(overrides)
        if names is None or not network_configuration:
            return None
        world = self._world
        now = world.clock.now()
        task_definition: TaskDefinition = backend.describe_task_definition(task_definition_str)
        cluster = backend._get_cluster(cluster_str)
        awsvpc: dict[str, Any] = dict(network_configuration["awsvpcConfiguration"])
        subnet_id = str(awsvpc["subnets"][0])
        security_groups = [str(g) for g in awsvpc.get("securityGroups") or []]
        definition_view = copy.copy(task_definition)
        definition_view.network_mode = None  # the ENI is attached below (see _launch)
        task: Task = lookup(_ECS, "Task")(
            cluster=cluster,
            task_definition=definition_view,
            container_instance_arn=None,
            resource_requirements=None,
            backend=backend,
            group=f"family:{task_definition.family}",
            launch_type="FARGATE",
            overrides=overrides or {},
            started_by=started_by or "",
            tags=list(tags or []),
            networking_configuration=None,
            platform_version="1.4.0",
        )
        task._transitions = []
        task.last_status = "PROVISIONING"
        task.desired_status = "RUNNING"
        task.network_configuration = {"awsvpcConfiguration": {**awsvpc, "subnets": [subnet_id]}}
        subnet, eni_id, ip = self._place(
            backend, cluster, task, task_definition, subnet_id, security_groups, now
        )
        start = now + world.latencies.task_start_seconds
        self._state_timers(backend).add(
            start,
            lambda at: self._probe_runs(
                backend, task, task_definition, subnet, eni_id, ip, names, at
            ),
        )
        return [task]

    def _probe_runs(
        self,
        backend: EC2ContainerServiceBackend,
        task: Task,
        task_definition: TaskDefinition,
        subnet: Subnet,
        eni_id: str,
        ip: str,
        names: list[str],
        at: float,
    ) -> None:
        world = self._world
        stamp = _utc(world.timestamp(at))
        options = (task_definition.container_definitions[0].get("logConfiguration") or {}).get(
            "options", {}
        )
        container_name = str(task_definition.container_definitions[0]["name"])
        group = str(options.get("awslogs-group", ""))
        stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container_name}/{task.id}"
        logs = lookup("moto.logs.models", "logs_backends")[backend.account_id][backend.region_name]
        if group not in logs.groups:
            # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html
            reason = (
                "ResourceInitializationError: failed to validate logger args: The specified log"
                " group does not exist."
            )
            self._probe_stopped(backend, task, subnet, eni_id, ip, at, None, reason)
            return
        task.last_status = "RUNNING"
        _show(task, started_at=stamp, pull_stopped_at=stamp)
        vpc = self._ec2(backend).get_vpc(subnet.vpc_id)
        # Private hosted zones answer only when the VPC has both DNS attributes on.
        # https://docs.aws.amazon.com/vpc/latest/userguide/vpc-dns.html#vpc-dns-support
        dns_on = bool(vpc.enable_dns_support) and bool(vpc.enable_dns_hostnames)
        route53 = Route53(backend.account_id, backend.partition)
        lines: list[str] = []
        for name in names:
            answers = route53.resolve_a(name, str(subnet.vpc_id)) if dns_on else None
            lines.append(
                f"PROBE {name} OK {' '.join(answers)}" if answers else f"PROBE {name} FAIL"
            )
        logs.create_log_stream(group, stream)
        millis = int(world.timestamp(at) * 1000)
        logs.put_log_events(
            group, stream, [{"timestamp": millis, "message": line} for line in lines]
        )
        exit_code = 0 if all(" OK " in line for line in lines) else 1
        self._probe_stopped(
            backend, task, subnet, eni_id, ip, at, exit_code, "Essential container in task exited"
        )

    def _probe_stopped(
        self,
        backend: EC2ContainerServiceBackend,
        task: Task,
        subnet: Subnet,
        eni_id: str,
        ip: str,
        at: float,
        exit_code: int | None,
        reason: str,
    ) -> None:
        stamp = _utc(self._world.timestamp(at))
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        stop_code = "EssentialContainerExited" if exit_code is not None else "TaskFailedToStart"
        _show(
            task,
            stop_code=stop_code,
            stopped_reason=reason,
            stopped_at=stamp,
            execution_stopped_at=stamp,
            stopping_at=stamp,
        )
        for container in task.containers:
            container.last_status = "STOPPED"
            _show(container, exitCode=exit_code, reason=None if exit_code is not None else reason)
        for attachment in task.attachments:
            attachment["status"] = "DELETED"
        with contextlib.suppress(Exception):
            self._ec2(backend).delete_network_interface(eni_id)
        with contextlib.suppress(Exception):
            subnet.del_subnet_ip(ip)

    # ------------------------------------------------------------------ networking
    def _place(
        self,
        backend: EC2ContainerServiceBackend,
        cluster: Any,
        task: Task,
        task_definition: TaskDefinition,
        subnet_id: str,
        security_groups: list[str],
        now: float,
    ) -> tuple[Subnet, str, str]:
        """A new Fargate task in ``subnet_id``: its ENI and address, the fields DescribeTasks
        shows while it is PROVISIONING, its containers PENDING, and the task in the cluster.
        Returns the subnet, the ENI id and the task's IP."""
        ec2 = self._ec2(backend)
        subnet = ec2.get_subnet(subnet_id)
        eni_id, ip = self._attach_eni(ec2, task, subnet, security_groups)
        _show(
            task,
            created_at=_utc(self._world.timestamp(now)),
            availability_zone=subnet.availability_zone,
            cpu=task_definition.cpu,
            memory=task_definition.memory,
            stopped_reason=None,
            stop_code=None,
        )
        for container in task.containers:
            container.last_status = "PENDING"
            container.task_arn = task.task_arn
            _show(container, exitCode=None)
        backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        return subnet, eni_id, ip

    def _attach_eni(
        self, ec2: EC2Backend, task: Task, subnet: Subnet, security_groups: list[str]
    ) -> tuple[str, str]:
        """The task's ENI, with the next free address of the subnet (AWS reserves the first
        four and the last address of every subnet:
        https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html)."""
        ip = self._free_ip(ec2, subnet)
        attachment_id = str(uuid.uuid4())
        eni = ec2.create_network_interface(
            subnet=subnet,
            private_ip_address=ip,
            group_ids=security_groups,
            description=f"arn:aws:ecs:{task.region_name}:attachment/{attachment_id}",
        )
        eni.status = "in-use"
        eni.device_index = 0
        subnet.request_ip(ip, eni)  # type: ignore[arg-type]  # moto keeps ENIs there too (EFS)
        region = str(task.region_name)
        domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
        dns_name = getattr(eni, "private_dns_name", None) or f"ip-{ip.replace('.', '-')}.{domain}"
        task.attachments = [
            {
                "id": attachment_id,
                "type": "ElasticNetworkInterface",
                "status": "PRECREATED",
                "details": [
                    {"name": "subnetId", "value": subnet.id},
                    {"name": "networkInterfaceId", "value": eni.id},
                    {"name": "macAddress", "value": eni.mac_address},
                    {"name": "privateDnsName", "value": dns_name},
                    {"name": "privateIPv4Address", "value": ip},
                ],
            }
        ]
        return str(eni.id), ip

    @classmethod
    def _has_free_ip(cls, ec2: EC2Backend, subnet: Subnet) -> bool:
        """As DescribeSubnets' AvailableIpAddressCount says (moto counts every ENI of the subnet,
        whichever address it got), and an address actually free for the task's ENI."""
        if subnet.available_ip_address_count <= 0:
            return False
        try:
            cls._free_ip(ec2, subnet)
        except RuntimeError:
            return False
        return True

    @staticmethod
    def _free_ip(ec2: EC2Backend, subnet: Subnet) -> str:
        network = ipaddress.ip_network(subnet.cidr_block)
        used = set(subnet._subnet_ips)
        for eni in ec2.enis.values():
            if eni.subnet is not None and eni.subnet.id == subnet.id:
                used.add(str(eni.private_ip_address))
                used.update(str(a.get("PrivateIpAddress")) for a in eni.private_ip_addresses)
        # hosts() skips the network and broadcast addresses; AWS also reserves +1, +2 and +3
        for address in itertools.islice(network.hosts(), 3, None):
            if str(address) not in used:
                return str(address)
        raise RuntimeError(f"subnet {subnet.id} ({subnet.cidr_block}) has no free address")

    # ------------------------------------------------------------------ helpers
    def _state_timers(self, backend: EC2ContainerServiceBackend) -> Timers:
        return self.state(backend).timers

    @staticmethod
    def _ec2(backend: EC2ContainerServiceBackend) -> EC2Backend:
        backends = lookup("moto.ec2.models", "ec2_backends")
        ec2: EC2Backend = backends[backend.account_id][backend.region_name]
        return ec2

    @staticmethod
    def _servicediscovery(backend: EC2ContainerServiceBackend) -> Any:
        backends = lookup("moto.servicediscovery.models", "servicediscovery_backends")
        return backends[backend.account_id][backend.region_name]


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
