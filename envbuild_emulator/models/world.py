"""``World``: the AWS behaviour models, installed onto moto.

``World.install()`` replaces a few moto attributes (plain assignments on classes, so they hold on
every thread, in-process under ``mock_aws`` and in ``ThreadedMotoServer``).  The models are lazy:
before moto handles any request for servicediscovery, ecs or route53 the world runs ``tick()``,
which applies everything whose time has come on the ``Clock``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from envbuild_emulator.moto_internals import Patcher, lookup

from ..clock import Clock
from ._state import BackendState, existing_state
from .cloudmap import CloudMapModel
from .ecs import EcsModel
from .faults import Faults
from .iam import install as install_iam_simulation

if TYPE_CHECKING:
    from moto.core.common_types import TYPE_RESPONSE
    from moto.core.responses import BaseResponse
    from moto.ecs.models import EC2ContainerServiceBackend, Service, Task
    from moto.servicediscovery.models import Service as CloudMapService
    from moto.servicediscovery.models import ServiceDiscoveryBackend
    from moto.servicediscovery.responses import ServiceDiscoveryResponse

__all__ = ["Latencies", "World"]

#: Services whose requests first bring the models up to date.
MODELLED_SERVICES = frozenset({"servicediscovery", "ecs", "route53"})

_SD = "moto.servicediscovery.models"
_SD_RESPONSES = "moto.servicediscovery.responses"
_ECS = "moto.ecs.models"
_ECS_RESPONSES = "moto.ecs.responses"


@dataclass(frozen=True)
class Latencies:
    """How long AWS takes, in emulated seconds (the World's Clock)."""

    # Cloud Map namespace creation: "it can take a minute or two" / about a minute for the
    # CREATE_NAMESPACE operation (and its Route 53 hosted zone) to reach SUCCESS.
    # https://docs.aws.amazon.com/cloud-map/latest/dg/creating-namespaces.html
    namespace_operation_seconds: float = 60.0
    # Fargate task PROVISIONING -> RUNNING (ENI attach, image pull, container start); typically
    # tens of seconds. https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
    task_start_seconds: float = 30.0
    # ECS registering a RUNNING task's IP in the Cloud Map service after it started.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-discovery.html
    registration_seconds: float = 5.0
    # Every other Cloud Map operation (RegisterInstance, DeregisterInstance, DeleteNamespace,
    # UpdateService ...): asynchronous, usually done within seconds.
    # https://docs.aws.amazon.com/cloud-map/latest/api/API_GetOperation.html
    service_operation_seconds: float = 2.0
    # A RUNNING task asked to stop: DEACTIVATING .. STOPPED.  ECS waits up to the container
    # stopTimeout (default 30 s) after SIGTERM. https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html
    task_stop_seconds: float = 30.0
    # Cloud Map's control plane (ListInstances, GetInstancesHealthStatus) shows a registered
    # instance at once; its data plane (DiscoverInstances, a separate endpoint
    # data-servicediscovery.<region>.amazonaws.com) and the Route 53 records it writes follow
    # asynchronously (RegisterInstance "creates or updates ... records" through an operation:
    # https://docs.aws.amazon.com/cloud-map/latest/api/API_RegisterInstance.html;
    # https://docs.aws.amazon.com/cloud-map/latest/api/API_DiscoverInstances.html). Seconds in
    # practice; 0 here by default (no lag), set it to try the readers' disagreement.
    discovery_propagation_seconds: float = 0.0


class World:
    """The emulated AWS behaviour moto lacks, driven by one Clock.

    Usage::

        world = World(Clock())
        with mock_aws(), world:          # or world.install() ... world.uninstall()
            ...boto3 calls...
            world.clock.advance(60)      # the next request sees the namespace created

    State lives on moto's backends, so moto's resets (``mock_aws`` stop, ``/moto-api/reset``)
    clear the modelled state with the data; the patches (and armed faults) stay installed.
    """

    _installed: ClassVar[World | None] = None
    _install_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, clock: Clock, latencies: Latencies | None = None) -> None:
        self.clock = clock
        self.latencies = latencies or Latencies()
        self.faults = Faults()
        self.lock = threading.RLock()
        #: CreateService's fields moto's backend does not take, while its request runs.
        self.pending_service_fields: dict[str, Any] | None = None
        self.cloudmap = CloudMapModel(self)
        self.ecs = EcsModel(self)
        self._epoch0 = time.time()
        self._patcher = Patcher()

    # ------------------------------------------------------------------ time
    def timestamp(self, at: float) -> float:
        """Epoch seconds (what the APIs show) of emulated time ``at``."""
        return self._epoch0 + at

    def tick(self) -> None:
        """Apply, in time order, every modelled change due at ``clock.now()``."""
        with self.lock:
            now = self.clock.now()
            while True:
                best: BackendState | None = None
                best_key: tuple[float, int] | None = None
                for state in self._live_states():
                    key = state.timers.next_due()
                    if key is not None and (best_key is None or key < best_key):
                        best, best_key = state, key
                if best is None or best_key is None or best_key[0] > now:
                    return
                due, action = best.timers.pop()
                action(due)

    def _live_states(self) -> Iterator[BackendState]:
        for backend_dict in (
            lookup(_SD, "servicediscovery_backends"),
            lookup(_ECS, "ecs_backends"),
        ):
            for account_backends in list(backend_dict.values()):
                for backend in list(account_backends.values()):
                    state = existing_state(backend, self)
                    if state is not None:
                        yield state

    # ------------------------------------------------------------------ install
    @property
    def installed(self) -> bool:
        return self._patcher.active

    def install(self) -> World:
        """Patch moto (idempotent for this world; refuses while another World is installed)."""
        with World._install_lock:
            if World._installed is self:
                return self
            if World._installed is not None:
                raise RuntimeError("another envbuild World is installed; uninstall it first")
            try:
                self._apply_patches()
            except BaseException:
                self._patcher.restore()
                raise
            World._installed = self
        return self

    def uninstall(self) -> None:
        """Restore every patched moto attribute."""
        with World._install_lock:
            if World._installed is not self:
                return
            self._patcher.restore()
            World._installed = None

    def __enter__(self) -> World:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.uninstall()

    def _apply_patches(self) -> None:
        world = self
        cloudmap = self.cloudmap
        ecs = self.ecs
        replace = self._patcher.replace

        # -- the choke point: one request at a time, the models brought up to date first.
        # moto's backends are plain dicts, not thread-safe, and the handlers call AWS from
        # thread pools: e.g. DescribeLogGroups iterating the log groups while another thread's
        # CreateLogGroup adds one raised "dictionary changed size during iteration" (1 build in
        # 4 at 200 services). AWS serves concurrent requests consistently; so does the emulator.
        # Step Functions is left out: its executions run on their own threads and its requests
        # (StartExecution, DescribeExecution, ...) only start or read them.
        def wrap_call_action(original: Callable[[BaseResponse], TYPE_RESPONSE]) -> object:
            def call_action(response: BaseResponse) -> TYPE_RESPONSE:
                service = getattr(response, "service_name", None)
                if service == "stepfunctions":
                    return original(response)
                with world.lock:
                    if service in MODELLED_SERVICES:
                        world.tick()
                    return original(response)

            return call_action

        replace("moto.core.responses", "BaseResponse.call_action", wrap_call_action)

        # -- IAM: SimulatePrincipalPolicy (moto lacks it)
        install_iam_simulation(self._patcher)

        # -- Cloud Map
        def create_private_dns_namespace(
            backend: ServiceDiscoveryBackend,
            name: str,
            creator_request_id: str | None,
            description: str | None,
            vpc: str,
            tags: list[dict[str, str]] | None,
            properties: dict[str, Any] | None,
        ) -> str:
            with world.lock:
                return cloudmap.create_namespace(
                    backend,
                    ns_type="DNS_PRIVATE",
                    name=name,
                    creator_request_id=creator_request_id,
                    description=description,
                    vpc=vpc,
                    tags=tags,
                    properties=properties,
                )

        def create_public_dns_namespace(
            backend: ServiceDiscoveryBackend,
            name: str,
            creator_request_id: str | None,
            description: str | None,
            tags: list[dict[str, str]] | None,
            properties: dict[str, Any] | None,
        ) -> str:
            with world.lock:
                return cloudmap.create_namespace(
                    backend,
                    ns_type="DNS_PUBLIC",
                    name=name,
                    creator_request_id=creator_request_id,
                    description=description,
                    vpc=None,
                    tags=tags,
                    properties=properties,
                )

        def create_http_namespace(
            backend: ServiceDiscoveryBackend,
            name: str,
            creator_request_id: str | None,
            description: str | None,
            tags: list[dict[str, str]] | None,
        ) -> str:
            with world.lock:
                return cloudmap.create_namespace(
                    backend,
                    ns_type="HTTP",
                    name=name,
                    creator_request_id=creator_request_id,
                    description=description,
                    vpc=None,
                    tags=tags,
                    properties=None,
                )

        def delete_namespace(backend: ServiceDiscoveryBackend, namespace_id: str) -> str:
            with world.lock:
                return cloudmap.delete_namespace(backend, namespace_id)

        def wrap_create_service(original: Callable[..., CloudMapService]) -> object:
            def create_service(
                backend: ServiceDiscoveryBackend,
                name: str,
                namespace_id: str | None,
                creator_request_id: str | None,
                description: str | None,
                dns_config: dict[str, Any] | None,
                health_check_config: dict[str, Any] | None,
                health_check_custom_config: dict[str, Any] | None,
                tags: list[dict[str, str]] | None,
                service_type: str | None,
            ) -> CloudMapService:
                with world.lock:
                    return cloudmap.create_service(
                        backend,
                        original,
                        name=name,
                        namespace_id=namespace_id,
                        creator_request_id=creator_request_id,
                        description=description,
                        dns_config=dns_config,
                        health_check_config=health_check_config,
                        health_check_custom_config=health_check_custom_config,
                        tags=tags,
                        service_type=service_type,
                    )

            return create_service

        def delete_service(backend: ServiceDiscoveryBackend, service_id: str) -> None:
            with world.lock:
                cloudmap.delete_service(backend, service_id)

        def register_instance(
            backend: ServiceDiscoveryBackend,
            service_id: str,
            instance_id: str,
            creator_request_id: str | None,
            attributes: dict[str, str] | None,
        ) -> str:
            with world.lock:
                return cloudmap.register_instance(
                    backend, service_id, instance_id, creator_request_id, attributes
                )

        def deregister_instance(
            backend: ServiceDiscoveryBackend, service_id: str, instance_id: str
        ) -> str:
            with world.lock:
                return cloudmap.deregister_instance(backend, service_id, instance_id)

        def create_operation(
            backend: ServiceDiscoveryBackend, op_type: str, targets: dict[str, str]
        ) -> str:
            with world.lock:
                return cloudmap.create_operation(backend, op_type, targets)

        def list_operations(backend: ServiceDiscoveryBackend) -> list[Any]:
            with world.lock:
                return cloudmap.all_operations(backend)

        sd_backend = "ServiceDiscoveryBackend"
        replace(
            _SD,
            f"{sd_backend}.create_private_dns_namespace",
            lambda _: create_private_dns_namespace,
        )
        replace(
            _SD, f"{sd_backend}.create_public_dns_namespace", lambda _: create_public_dns_namespace
        )
        replace(_SD, f"{sd_backend}.create_http_namespace", lambda _: create_http_namespace)
        replace(_SD, f"{sd_backend}.delete_namespace", lambda _: delete_namespace)
        replace(_SD, f"{sd_backend}.create_service", wrap_create_service)
        replace(_SD, f"{sd_backend}.delete_service", lambda _: delete_service)
        replace(_SD, f"{sd_backend}.register_instance", lambda _: register_instance)
        replace(_SD, f"{sd_backend}.deregister_instance", lambda _: deregister_instance)
        replace(_SD, f"{sd_backend}._create_operation", lambda _: create_operation)
        replace(_SD, f"{sd_backend}.list_operations", lambda _: list_operations)

        def wrap_discover_instances(original: Callable[..., Any]) -> object:
            def discover_instances(
                backend: ServiceDiscoveryBackend, *args: Any, **kwargs: Any
            ) -> Any:
                with world.lock:
                    instances, revisions = original(backend, *args, **kwargs)
                    return cloudmap.discoverable(backend, instances), revisions

            return discover_instances

        replace(_SD, f"{sd_backend}.discover_instances", wrap_discover_instances)

        def list_namespaces_response(response: ServiceDiscoveryResponse) -> str:
            return cloudmap.list_namespaces(response)

        def list_services_response(response: ServiceDiscoveryResponse) -> str:
            return cloudmap.list_services(response)

        def list_operations_response(response: ServiceDiscoveryResponse) -> str:
            return cloudmap.list_operations(response)

        sd_response = "ServiceDiscoveryResponse"
        replace(_SD_RESPONSES, f"{sd_response}.list_namespaces", lambda _: list_namespaces_response)
        replace(_SD_RESPONSES, f"{sd_response}.list_services", lambda _: list_services_response)
        replace(_SD_RESPONSES, f"{sd_response}.list_operations", lambda _: list_operations_response)

        # -- ECS
        def wrap_ecs_create_service(original: Callable[..., Service]) -> object:
            def create_service(
                backend: EC2ContainerServiceBackend, *args: Any, **kwargs: Any
            ) -> Service:
                with world.lock:
                    service = original(backend, *args, **kwargs)
                    ecs.apply_service_fields(service, world.pending_service_fields)
                    ecs.after_create_service(backend, service)
                    return service

            return create_service

        def wrap_ecs_update_service(original: Callable[..., Service]) -> object:
            def update_service(
                backend: EC2ContainerServiceBackend, service_properties: dict[str, Any]
            ) -> Service:
                with world.lock:
                    # What starts a new deployment on ECS besides another task definition:
                    # forceNewDeployment and a changed network configuration.
                    # (moto's own forceNewDeployment renames the current deployment, which
                    # would orphan its tasks: the model starts a new deployment instead.)
                    force = bool(service_properties.pop("force_new_deployment", False)) or (
                        service_properties.get("network_configuration") is not None
                    )
                    service = original(backend, service_properties)
                    if getattr(service, "capacity_provider_strategy", None):
                        service.launch_type = None  # ECS describes a strategy or a launch type
                    ecs.after_update_service(backend, service, force_new_deployment=force)
                    return service

            return update_service

        def wrap_ecs_delete_service(original: Callable[..., Service]) -> object:
            def delete_service(
                backend: EC2ContainerServiceBackend,
                cluster_name: str,
                service_name: str,
                force: bool,
            ) -> Service:
                with world.lock:
                    service = original(backend, cluster_name, service_name, force)
                    ecs.after_delete_service(backend, service)
                    return service

            return delete_service

        def wrap_ecs_stop_task(original: Callable[..., Task]) -> object:
            def stop_task(
                backend: EC2ContainerServiceBackend, cluster_str: str, task_str: str, reason: str
            ) -> Task:
                with world.lock:
                    task = ecs.stop_task(backend, cluster_str, task_str, reason)
                    if task is not None:
                        return task
                    return original(backend, cluster_str, task_str, reason)

            return stop_task

        def wrap_ecs_list_tasks(original: Callable[..., list[Task]]) -> object:
            def list_tasks(
                backend: EC2ContainerServiceBackend,
                cluster_str: str | None = None,
                container_instance: str | None = None,
                family: str | None = None,
                started_by: str | None = None,
                service_name: str | None = None,
                desiredStatus: str | None = None,  # moto's parameter name
            ) -> list[Task]:
                with world.lock:
                    tasks = original(
                        backend, cluster_str, container_instance, family, started_by, None, None
                    )
                    return ecs.filter_list_tasks(backend, tasks, service_name, desiredStatus)

            return list_tasks

        def wrap_ecs_run_task(original: Callable[..., list[Task]]) -> object:
            def run_task(
                backend: EC2ContainerServiceBackend,
                cluster_str: str,
                task_definition_str: str,
                count: int,
                overrides: dict[str, Any] | None,
                started_by: str,
                tags: list[dict[str, str]] | None,
                launch_type: str | None,
                *rest: Any,
                **kwargs: Any,
            ) -> list[Task]:
                network = rest[0] if rest else kwargs.get("networking_configuration")
                with world.lock:
                    probe = ecs.run_probe(
                        backend,
                        cluster_str,
                        task_definition_str,
                        overrides,
                        started_by,
                        tags,
                        network,
                    )
                    if probe is not None:
                        return probe
                    return original(
                        backend,
                        cluster_str,
                        task_definition_str,
                        count,
                        overrides,
                        started_by,
                        tags,
                        launch_type,
                        *rest,
                        **kwargs,
                    )

            return run_task

        def wrap_ecs_create_service_response(original: Callable[[Any], Any]) -> object:
            def create_service(response: Any) -> Any:
                """CreateService keeps the request's deploymentConfiguration (moto ignores it;
                its UpdateService already stores it as ``deployment_configuration``), so that
                DescribeServices returns it and the model's circuit breaker reads it; and its
                capacityProviderStrategy (instead of a launch type: the cluster must have the
                providers), enableExecuteCommand and the other fields moto's CreateService drops
                (``EcsModel.create_service_fields``)."""
                with world.lock:
                    fields = ecs.create_service_fields(response)
                    world.pending_service_fields = fields
                    try:
                        result = original(response)
                    finally:
                        world.pending_service_fields = None
                    configuration = response._get_param("deploymentConfiguration") or {}
                    service = getattr(result, "result", {}).get("service")
                    if service is not None:
                        # ECS fills in the rolling update's percents it is not given
                        service.deployment_configuration = {
                            **configuration,
                            "maximumPercent": configuration.get("maximumPercent", 200),
                            "minimumHealthyPercent": configuration.get(
                                "minimumHealthyPercent", 100
                            ),
                        }
                    return result

            return create_service

        def wrap_deregister_scalable_target(original: Callable[..., None]) -> object:
            def deregister_scalable_target(
                backend: Any, namespace: str, r_id: str, dimension: str
            ) -> None:
                """https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DeregisterScalableTarget.html:
                "Deregistering a scalable target deletes the scaling policies [...] that are
                associated with it" (moto keeps them)."""
                with world.lock:
                    original(backend, namespace, r_id, dimension)
                    backend.policies = {
                        key: policy
                        for key, policy in backend.policies.items()
                        if not (
                            policy.service_namespace == namespace
                            and policy.resource_id == r_id
                            and policy.scalable_dimension == dimension
                        )
                    }

            return deregister_scalable_target

        replace(
            "moto.applicationautoscaling.models",
            "ApplicationAutoscalingBackend.deregister_scalable_target",
            wrap_deregister_scalable_target,
        )

        def wrap_ecs_describe_task_definition(original: Callable[..., Any]) -> object:
            def describe_task_definition(
                backend: EC2ContainerServiceBackend, task_definition_str: str
            ) -> Any:
                """A family without a revision is its latest ACTIVE revision (AWS:
                DescribeTaskDefinition "If a revision isn't specified, the latest ACTIVE
                revision is used"); moto returns the latest, INACTIVE included."""
                name = task_definition_str.split("/")[-1]
                if ":" not in name:
                    revisions = backend.task_definitions.get(name, {})
                    active = [r for r, d in revisions.items() if d.status == "ACTIVE"]
                    if active:
                        return original(backend, f"{name}:{max(active)}")
                return original(backend, task_definition_str)

            return describe_task_definition

        ecs_backend = "EC2ContainerServiceBackend"
        replace(
            _ECS,
            f"{ecs_backend}.describe_task_definition",
            wrap_ecs_describe_task_definition,
        )
        replace(
            _ECS_RESPONSES,
            "EC2ContainerServiceResponse.create_service",
            wrap_ecs_create_service_response,
        )
        replace(_ECS, f"{ecs_backend}.run_task", wrap_ecs_run_task)
        replace(_ECS, f"{ecs_backend}.create_service", wrap_ecs_create_service)
        replace(_ECS, f"{ecs_backend}.update_service", wrap_ecs_update_service)
        replace(_ECS, f"{ecs_backend}.delete_service", wrap_ecs_delete_service)
        replace(_ECS, f"{ecs_backend}.stop_task", wrap_ecs_stop_task)
        replace(_ECS, f"{ecs_backend}.list_tasks", wrap_ecs_list_tasks)
