"""AWS Cloud Map (servicediscovery) as AWS documents it, where moto differs.

- Operations are asynchronous: SUBMITTED -> PENDING -> SUCCESS | FAIL, visible in GetOperation
  and ListOperations; namespaces appear only once their CREATE_NAMESPACE operation succeeded.
- A DNS namespace owns a Route 53 hosted zone named after it (private ones associated with the
  VPC); instances with AWS_INSTANCE_IPV4 get A records in it.
- CreatorRequestId makes creation idempotent; names are unique where AWS says so; the List*
  calls honour Filters and pagination.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from envbuild_emulator.moto_internals import lookup

from ._state import BackendState, state_of
from .dns import InstanceRecord, Route53
from .errors import (
    DuplicateRequest,
    InvalidInput,
    NamespaceAlreadyExists,
    NamespaceNotFound,
    ResourceInUse,
    ServiceAlreadyExists,
    ServiceNotFound,
)
from .faults import OperationFailure

if TYPE_CHECKING:
    from moto.servicediscovery.models import (
        Namespace,
        Service,
        ServiceDiscoveryBackend,
        ServiceInstance,
    )
    from moto.servicediscovery.responses import ServiceDiscoveryResponse

    from .world import World

__all__ = ["CloudMapModel", "CloudMapOperation"]

_SD = "moto.servicediscovery.models"
_DNS_TYPES = ("DNS_PRIVATE", "DNS_PUBLIC")
_DEFAULT_PAGE = 100  # "If you don't specify a value for MaxResults, Cloud Map returns up to 100"


def _operation_id() -> str:
    # Same shape as AWS operation ids: 32 lowercase alphanumerics, '-', 8 more.
    raw = uuid.uuid4().hex + uuid.uuid4().hex
    return f"{raw[:32]}-{raw[32:40]}"


class CloudMapOperation:
    """A Cloud Map operation (stored in moto's ``backend.operations``; moto renders to_json)."""

    def __init__(
        self,
        operation_type: str,
        targets: dict[str, str],
        owner_account: str,
        created_at: float,
        timestamp: float,
    ) -> None:
        self.id = _operation_id()
        self.operation_type = operation_type
        self.targets = targets
        self.owner_account = owner_account
        self.status = "SUBMITTED"
        self.error_code: str | None = None
        self.error_message: str | None = None
        self.created_at = created_at  # emulated seconds (clock), for scheduling
        self.created = timestamp  # epoch seconds, what the API shows
        self.updated = timestamp

    def move(self, status: str, timestamp: float, failure: OperationFailure | None = None) -> None:
        self.status = status
        self.updated = timestamp
        if failure is not None:
            self.error_code = failure.error_code
            self.error_message = failure.error_message

    def to_json(self, short: bool = False) -> dict[str, Any]:
        if short:
            return {"Id": self.id, "Status": self.status}
        body: dict[str, Any] = {
            "Id": self.id,
            "OwnerAccount": self.owner_account,
            "Type": self.operation_type,
            "Status": self.status,
            "CreateDate": self.created,
            "UpdateDate": self.updated,
            "Targets": self.targets,
        }
        if self.status == "FAIL":
            body["ErrorCode"] = self.error_code
            body["ErrorMessage"] = self.error_message
        return body


@dataclass
class _PendingNamespace:
    namespace: Namespace
    operation_id: str
    tags: list[dict[str, str]]


@dataclass
class _PendingRegistration:
    service_id: str
    instance_id: str
    operation_id: str


class CloudMapState(BackendState):
    """Model state of one servicediscovery backend (one account + region)."""

    def __init__(self, owner: object) -> None:
        super().__init__(owner)
        self.pending_namespaces: dict[str, _PendingNamespace] = {}  # by operation id
        self.namespace_requests: dict[str, str] = {}  # CreatorRequestId -> operation id
        self.instance_requests: dict[tuple[str, str, str], str] = {}  # (svc, inst, CRI) -> op
        self.pending_registrations: list[_PendingRegistration] = []
        self.records: dict[tuple[str, str], list[InstanceRecord]] = {}  # (svc, inst) -> records
        #: (svc, inst) -> emulated time its registration reaches DiscoverInstances and Route 53
        self.propagating: dict[tuple[str, str], float] = {}


@dataclass(frozen=True)
class _Filter:
    name: str
    values: list[str]
    condition: str


@dataclass
class _FilterRules:
    """Allowed filter names -> allowed conditions (as the API reference lists them)."""

    allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def parse(self, raw: object) -> list[_Filter]:
        filters: list[_Filter] = []
        if raw is None:
            return filters
        if not isinstance(raw, list):
            raise InvalidInput("Filters must be a list")
        for item in raw:
            if not isinstance(item, dict):
                raise InvalidInput("Invalid filter")
            name = str(item.get("Name", ""))
            condition = str(item.get("Condition") or "EQ")
            values = [str(value) for value in item.get("Values") or []]
            if name not in self.allowed:
                raise InvalidInput(f"Filter name {name!r} is not supported")
            if condition not in self.allowed[name]:
                raise InvalidInput(f"Condition {condition} is not supported for filter {name}")
            if not values:
                raise InvalidInput(f"Filter {name} needs at least one value")
            if condition in ("EQ", "BEGINS_WITH") and len(values) != 1:
                raise InvalidInput(f"Condition {condition} takes exactly one value")
            if condition == "BETWEEN" and len(values) != 2:
                raise InvalidInput("Condition BETWEEN takes exactly two values")
            filters.append(_Filter(name, values, condition))
        return filters


def _matches(value: str | float | None, condition: str, values: Sequence[str]) -> bool:
    if value is None:
        return False
    if condition == "EQ":
        return str(value) == values[0]
    if condition == "IN":
        return str(value) in values
    if condition == "BEGINS_WITH":
        return str(value).startswith(values[0])
    if condition == "BETWEEN":
        return float(values[0]) <= float(value) <= float(values[1])
    return False


# https://docs.aws.amazon.com/cloud-map/latest/api/API_NamespaceFilter.html
_NAMESPACE_FILTERS = _FilterRules(
    {
        "TYPE": ("EQ", "IN", "BEGINS_WITH"),
        "NAME": ("EQ", "BEGINS_WITH"),
        "HTTP_NAME": ("EQ", "BEGINS_WITH"),
        "RESOURCE_OWNER": ("EQ",),
    }
)
# https://docs.aws.amazon.com/cloud-map/latest/api/API_ServiceFilter.html
_SERVICE_FILTERS = _FilterRules({"NAMESPACE_ID": ("EQ", "IN"), "RESOURCE_OWNER": ("EQ",)})
# https://docs.aws.amazon.com/cloud-map/latest/api/API_OperationFilter.html
_OPERATION_FILTERS = _FilterRules(
    {
        "NAMESPACE_ID": ("EQ",),
        "SERVICE_ID": ("EQ",),
        "STATUS": ("EQ", "IN"),
        "TYPE": ("EQ", "IN"),
        "UPDATE_DATE": ("BETWEEN",),
    }
)


def _paginate(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], str | None]:
    token = params.get("NextToken")
    start = int(token) if isinstance(token, str) and token.isdigit() else 0
    size = int(params.get("MaxResults") or _DEFAULT_PAGE)
    page = items[start : start + size]
    more = start + size < len(items)
    return page, (str(start + size) if more else None)


def _epoch(value: object) -> float:
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).timestamp()
    if isinstance(value, int | float):
        return float(value)
    return 0.0


def _namespace_id_of(value: str) -> str:
    # NAMESPACE_ID filters accept an id or an ARN (.../namespace/ns-...)
    return value.rsplit("/", 1)[-1]


class CloudMapModel:
    """The Cloud Map behaviour; its methods replace moto's (installed by World)."""

    def __init__(self, world: World) -> None:
        self._world = world

    # ------------------------------------------------------------------ state and operations
    def state(self, backend: ServiceDiscoveryBackend) -> CloudMapState:
        return state_of(backend, self._world, CloudMapState)

    def _new_operation(
        self, backend: ServiceDiscoveryBackend, operation_type: str, targets: dict[str, str]
    ) -> CloudMapOperation:
        now = self._world.clock.now()
        operation = CloudMapOperation(
            operation_type, targets, backend.account_id, now, self._world.timestamp(now)
        )
        backend.operations[operation.id] = operation  # type: ignore[assignment]
        return operation

    def _run(
        self,
        backend: ServiceDiscoveryBackend,
        operation: CloudMapOperation,
        duration: float,
        complete: Callable[[float], OperationFailure | None],
    ) -> None:
        """Schedule SUBMITTED -> PENDING -> SUCCESS/FAIL; ``complete`` applies the effect.

        https://docs.aws.amazon.com/cloud-map/latest/api/API_Operation.html (Status): SUBMITTED
        "This is the initial state that occurs immediately after you submit a request", PENDING
        "Cloud Map is performing the operation", SUCCESS / FAIL.  AWS does not say when PENDING
        starts; the model enters it after min(1 s, half the duration).
        """
        timers = self.state(backend).timers
        start = operation.created_at
        world = self._world

        def to_pending(at: float) -> None:
            if operation.status == "SUBMITTED":
                operation.move("PENDING", world.timestamp(at))

        def finish(at: float) -> None:
            failure = complete(at)
            if failure is None:
                operation.move("SUCCESS", world.timestamp(at))
            else:
                operation.move("FAIL", world.timestamp(at), failure)

        timers.add(start + min(1.0, duration / 2), to_pending)
        timers.add(start + duration, finish)

    def create_operation(
        self, backend: ServiceDiscoveryBackend, op_type: str, targets: dict[str, str]
    ) -> str:
        """Replaces moto's ``_create_operation`` (UpdateService, UpdateXxxNamespace ...): moto
        applies those changes at once; the operation still takes ``service_operation_seconds``."""
        operation = self._new_operation(backend, op_type, targets)
        self._run(
            backend,
            operation,
            self._world.latencies.service_operation_seconds,
            lambda _at: None,
        )
        return operation.id

    # ------------------------------------------------------------------ namespaces
    def create_namespace(
        self,
        backend: ServiceDiscoveryBackend,
        *,
        ns_type: str,
        name: str,
        creator_request_id: str | None,
        description: str | None,
        vpc: str | None,
        tags: list[dict[str, str]] | None,
        properties: dict[str, Any] | None,
    ) -> str:
        """CreateHttpNamespace / CreatePrivateDnsNamespace / CreatePublicDnsNamespace.

        https://docs.aws.amazon.com/cloud-map/latest/api/API_CreatePrivateDnsNamespace.html
        """
        state = self.state(backend)
        # "CreatorRequestId: A unique string that identifies the request and that allows failed
        # CreatePrivateDnsNamespace requests to be retried without the risk of running the
        # operation twice." -> the same id answers with the same operation.
        if creator_request_id and creator_request_id in state.namespace_requests:
            return state.namespace_requests[creator_request_id]
        if not name:
            raise InvalidInput("Name is required")
        if ns_type == "DNS_PRIVATE" and not vpc:
            raise InvalidInput("Vpc is required")

        # Several namespaces may share a VPC; only the same name in the same VPC (private) or
        # the same name (HTTP / public) already exists -> NamespaceAlreadyExists.
        for existing in backend.namespaces.values():
            if self._same_namespace(existing.name, existing.type, existing.vpc, name, ns_type, vpc):
                raise NamespaceAlreadyExists(existing.id, existing.creator_request_id)
        for pending in state.pending_namespaces.values():
            ns = pending.namespace
            if self._same_namespace(ns.name, ns.type, ns.vpc, name, ns_type, vpc):
                raise DuplicateRequest(pending.operation_id)

        dns_properties = dict((properties or {}).get("DnsProperties") or {})
        http_properties: dict[str, Any] = {}
        if ns_type == "HTTP":
            dns_properties = {"SOA": {}}
            http_properties = {"HttpName": name}
        namespace_cls = lookup(_SD, "Namespace")
        namespace: Namespace = namespace_cls(
            account_id=backend.account_id,
            region=backend.region_name,
            name=name,
            ns_type=ns_type,
            creator_request_id=creator_request_id or "",
            description=description,
            dns_properties=dns_properties,
            http_properties=http_properties,
            vpc=vpc if ns_type == "DNS_PRIVATE" else None,
        )
        now = self._world.clock.now()
        namespace.created = namespace.updated = self._world.timestamp(now)

        failure = self._world.faults.take_namespace_failure(name)
        operation = self._new_operation(backend, "CREATE_NAMESPACE", {"NAMESPACE": namespace.id})
        state.pending_namespaces[operation.id] = _PendingNamespace(
            namespace, operation.id, list(tags or [])
        )
        if creator_request_id:
            state.namespace_requests[creator_request_id] = operation.id

        def complete(_at: float) -> OperationFailure | None:
            pending = state.pending_namespaces.pop(operation.id)
            if failure is not None:
                return failure
            if ns_type in _DNS_TYPES:
                zone_failure = self._create_zone(backend, namespace)
                if zone_failure is not None:
                    return zone_failure
            backend.namespaces[namespace.id] = namespace
            if pending.tags:
                backend.tagger.tag_resource(namespace.arn, pending.tags)
            return None

        self._run(backend, operation, self._world.latencies.namespace_operation_seconds, complete)
        return operation.id

    @staticmethod
    def _same_namespace(
        name_a: str, type_a: str, vpc_a: str | None, name_b: str, type_b: str, vpc_b: str | None
    ) -> bool:
        if name_a != name_b:
            return False
        if type_a == "DNS_PRIVATE" and type_b == "DNS_PRIVATE":
            return vpc_a == vpc_b
        return type_a == type_b or "HTTP" in (type_a, type_b)

    def _create_zone(
        self, backend: ServiceDiscoveryBackend, namespace: Namespace
    ) -> OperationFailure | None:
        """The hosted zone Cloud Map creates for a DNS namespace, named after it.

        https://docs.aws.amazon.com/cloud-map/latest/dg/dns-considerations.html and
        https://docs.aws.amazon.com/cloud-map/latest/api/API_CreatePrivateDnsNamespace.html
        ("Creates a private namespace based on DNS, which is visible only inside a specified
        Amazon VPC"). Route 53 refuses a private zone whose name is already associated with the
        VPC (ConflictingDomainExists, API_CreateHostedZone); Cloud Map reports that through the
        operation (CANNOT_CREATE_HOSTED_ZONE), not as an error of the request.
        """
        route53 = Route53(backend.account_id, backend.partition)
        private = namespace.type == "DNS_PRIVATE"
        if private and namespace.vpc and route53.private_zone_in_vpc(namespace.name, namespace.vpc):
            return OperationFailure(
                "CANNOT_CREATE_HOSTED_ZONE",
                f"ConflictingDomainExists: A hosted zone named {namespace.name} is already "
                f"associated with VPC {namespace.vpc}.",
            )
        zone = route53.create_zone(
            namespace.name,
            private=private,
            vpc_id=namespace.vpc,
            vpc_region=backend.region_name,
            comment=f"Created by AWS Cloud Map namespace with ARN {namespace.arn}",
            caller_reference=f"cloudmap-{namespace.id}",
        )
        namespace.dns_properties["HostedZoneId"] = zone.resource_id
        return None

    def delete_namespace(self, backend: ServiceDiscoveryBackend, namespace_id: str) -> str:
        """https://docs.aws.amazon.com/cloud-map/latest/api/API_DeleteNamespace.html: fails with
        ResourceInUse while the namespace contains services; the operation deletes the hosted
        zone too."""
        namespace = backend.namespaces.get(namespace_id)
        if namespace is None:
            raise NamespaceNotFound(namespace_id)
        if any(
            self._namespace_of(service) == namespace_id for service in backend.services.values()
        ):
            raise ResourceInUse(f"Namespace {namespace_id} has associated services")
        operation = self._new_operation(backend, "DELETE_NAMESPACE", {"NAMESPACE": namespace_id})

        def complete(_at: float) -> OperationFailure | None:
            gone = backend.namespaces.pop(namespace_id, None)
            zone_id = (gone.dns_properties or {}).get("HostedZoneId") if gone else None
            if zone_id:
                Route53(backend.account_id, backend.partition).delete_zone(str(zone_id))
            return None

        self._run(backend, operation, self._world.latencies.service_operation_seconds, complete)
        return operation.id

    # ------------------------------------------------------------------ services
    @staticmethod
    def _namespace_of(service: Service) -> str | None:
        if service.namespace_id:
            return service.namespace_id
        return (service.dns_config or {}).get("NamespaceId")

    def create_service(
        self,
        backend: ServiceDiscoveryBackend,
        original: Callable[..., Service],
        *,
        name: str,
        namespace_id: str | None,
        creator_request_id: str | None,
        description: str | None,
        dns_config: dict[str, Any] | None,
        health_check_config: dict[str, Any] | None,
        health_check_custom_config: dict[str, Any] | None,
        tags: list[dict[str, str]] | None,
        service_type: str | None,
    ) -> Service:
        """https://docs.aws.amazon.com/cloud-map/latest/api/API_CreateService.html: the
        namespace must exist (NamespaceNotFound); a service name is unique within a namespace
        (ServiceAlreadyExists); a retry with the same CreatorRequestId returns the service."""
        namespace_id = namespace_id or (dns_config or {}).get("NamespaceId")
        if not namespace_id or namespace_id not in backend.namespaces:
            raise NamespaceNotFound(str(namespace_id))
        for existing in backend.services.values():
            if existing.name == name and self._namespace_of(existing) == namespace_id:
                if creator_request_id and existing.creator_request_id == creator_request_id:
                    return existing
                raise ServiceAlreadyExists(existing.id, existing.arn, existing.creator_request_id)
        if dns_config is not None:
            dns_config = dict(dns_config)
            dns_config.setdefault("RoutingPolicy", "MULTIVALUE")
        if health_check_custom_config is not None:
            # "FailureThreshold ... is no longer supported and is always 1"
            # https://docs.aws.amazon.com/cloud-map/latest/api/API_HealthCheckCustomConfig.html
            health_check_custom_config = {"FailureThreshold": 1}
        service = original(
            backend,
            name=name,
            namespace_id=namespace_id,
            creator_request_id=creator_request_id,
            description=description,
            dns_config=dns_config,
            health_check_config=health_check_config,
            health_check_custom_config=health_check_custom_config,
            tags=tags,
            service_type=service_type or ("DNS_HTTP" if dns_config else "HTTP"),
        )
        service.created = self._world.timestamp(self._world.clock.now())
        return service

    def delete_service(self, backend: ServiceDiscoveryBackend, service_id: str) -> None:
        """https://docs.aws.amazon.com/cloud-map/latest/api/API_DeleteService.html: "If the
        service still contains one or more registered instances, the request fails"."""
        service = backend.services.get(service_id)
        if service is None:
            raise ServiceNotFound(service_id)
        if service.instances:
            raise ResourceInUse(f"Service {service_id} has registered instances")
        del backend.services[service_id]

    # ------------------------------------------------------------------ instances
    def register_instance(
        self,
        backend: ServiceDiscoveryBackend,
        service_id: str,
        instance_id: str,
        creator_request_id: str | None,
        attributes: dict[str, str] | None,
    ) -> str:
        """https://docs.aws.amazon.com/cloud-map/latest/api/API_RegisterInstance.html:
        asynchronous (an operation); creates or updates the instance and its DNS records."""
        service = backend.services.get(service_id)
        if service is None:
            raise ServiceNotFound(service_id)
        attributes = dict(attributes or {})
        record_types = {r.get("Type") for r in (service.dns_config or {}).get("DnsRecords") or []}
        if (
            "A" in record_types
            and "AWS_INSTANCE_IPV4" not in attributes
            and ("AAAA" not in record_types or "AWS_INSTANCE_IPV6" not in attributes)
        ):
            raise InvalidInput("AWS_INSTANCE_IPV4 is required for a service with an A record")
        if "SRV" in record_types and "AWS_INSTANCE_PORT" not in attributes:
            raise InvalidInput("AWS_INSTANCE_PORT is required for a service with an SRV record")
        state = self.state(backend)
        key = (service_id, instance_id, creator_request_id or "")
        if creator_request_id and key in state.instance_requests:
            return state.instance_requests[key]
        operation = self._new_operation(
            backend, "REGISTER_INSTANCE", {"INSTANCE": instance_id, "SERVICE": service_id}
        )
        if creator_request_id:
            state.instance_requests[key] = operation.id

        def complete(_at: float) -> OperationFailure | None:
            current = backend.services.get(service_id)
            if current is None:
                return OperationFailure("INTERNAL_FAILURE", f"Service {service_id} was deleted")
            # AWS_INIT_HEALTH_STATUS: the first status of an instance of a service with a custom
            # health check (HEALTHY by default).
            # https://docs.aws.amazon.com/cloud-map/latest/api/API_RegisterInstance.html
            initial = attributes.get("AWS_INIT_HEALTH_STATUS", "HEALTHY")
            health = initial if current.health_check_custom_config else "HEALTHY"
            self.put_instance(
                backend, current, instance_id, attributes, creator_request_id, health_status=health
            )
            return None

        self._run(backend, operation, self._world.latencies.service_operation_seconds, complete)
        return operation.id

    def deregister_instance(
        self, backend: ServiceDiscoveryBackend, service_id: str, instance_id: str
    ) -> str:
        """https://docs.aws.amazon.com/cloud-map/latest/api/API_DeregisterInstance.html:
        asynchronous; deletes the instance and the records Cloud Map created for it."""
        service = backend.services.get(service_id)
        if service is None:
            raise ServiceNotFound(service_id)
        if not any(i.instance_id == instance_id for i in service.instances):
            instance_not_found = lookup(_SD, "InstanceNotFound")
            raise instance_not_found(instance_id)
        operation = self._new_operation(
            backend, "DEREGISTER_INSTANCE", {"INSTANCE": instance_id, "SERVICE": service_id}
        )

        def complete(_at: float) -> OperationFailure | None:
            current = backend.services.get(service_id)
            if current is not None:
                self.remove_instance(backend, current, instance_id)
            return None

        self._run(backend, operation, self._world.latencies.service_operation_seconds, complete)
        return operation.id

    def put_instance(
        self,
        backend: ServiceDiscoveryBackend,
        service: Service,
        instance_id: str,
        attributes: dict[str, str],
        creator_request_id: str | None = None,
        health_status: str = "HEALTHY",
    ) -> ServiceInstance:
        """Create or update an instance at once, with its records (the effect of a
        RegisterInstance operation)."""
        instance_cls = lookup(_SD, "ServiceInstance")
        instance: ServiceInstance = instance_cls(
            service_id=service.id,
            instance_id=instance_id,
            creator_request_id=creator_request_id,
            attributes=dict(attributes),
        )
        instance.health_status = health_status
        service.instances = [i for i in service.instances if i.instance_id != instance_id]
        service.instances.append(instance)
        service.instances_revision[instance_id] = service.instances_revision.get(instance_id, 0) + 1
        if health_status != "HEALTHY":  # Route 53 answers only with healthy instances
            records = self.state(backend).records.pop((service.id, instance_id), [])
            Route53(backend.account_id, backend.partition).remove_records(records)
            return instance
        lag = self._world.latencies.discovery_propagation_seconds
        if lag <= 0:
            self._update_records(backend, service, instance_id, instance.attributes)
            return instance
        # The control plane has it now; DiscoverInstances and the records after the lag
        # (Latencies.discovery_propagation_seconds).
        state = self.state(backend)
        key = (service.id, instance_id)
        revision = service.instances_revision[instance_id]
        due = self._world.clock.now() + lag
        state.propagating[key] = due

        def propagate(_at: float) -> None:
            current = backend.services.get(key[0])
            if state.propagating.get(key) != due:
                return  # registered again since: that registration propagates
            del state.propagating[key]
            if current is not None and current.instances_revision.get(instance_id) == revision:
                self._update_records(backend, current, instance_id, instance.attributes)

        state.timers.add(due, propagate)
        return instance

    def set_health(
        self, backend: ServiceDiscoveryBackend, service: Service, instance_id: str, status: str
    ) -> None:
        """The custom health status ECS reports (UpdateInstanceCustomHealthStatus): Route 53
        answers only with HEALTHY instances, so an UNHEALTHY one's records leave DNS."""
        instance = next((i for i in service.instances if i.instance_id == instance_id), None)
        if instance is None:
            return
        instance.health_status = status
        if status == "HEALTHY":
            self._update_records(backend, service, instance_id, instance.attributes)
        else:
            records = self.state(backend).records.pop((service.id, instance_id), [])
            Route53(backend.account_id, backend.partition).remove_records(records)

    def discoverable(
        self, backend: ServiceDiscoveryBackend, instances: list[ServiceInstance]
    ) -> list[ServiceInstance]:
        """What DiscoverInstances answers: the instances whose registration has propagated."""
        propagating = self.state(backend).propagating
        return [i for i in instances if (i.service_id, i.instance_id) not in propagating]

    def remove_instance(
        self, backend: ServiceDiscoveryBackend, service: Service, instance_id: str
    ) -> bool:
        """Delete an instance at once, with its records (the effect of DeregisterInstance)."""
        before = len(service.instances)
        service.instances = [i for i in service.instances if i.instance_id != instance_id]
        if len(service.instances) == before:
            return False
        service.instances_revision[instance_id] = service.instances_revision.get(instance_id, 0) + 1
        self.state(backend).propagating.pop((service.id, instance_id), None)
        records = self.state(backend).records.pop((service.id, instance_id), [])
        Route53(backend.account_id, backend.partition).remove_records(records)
        return True

    def record_operation(
        self,
        backend: ServiceDiscoveryBackend,
        operation_type: str,
        targets: dict[str, str],
    ) -> str:
        """An operation AWS ran on the caller's behalf (ECS registering a task): SUCCESS now."""
        operation = self._new_operation(backend, operation_type, targets)
        operation.move("SUCCESS", operation.created)
        return operation.id

    def _update_records(
        self,
        backend: ServiceDiscoveryBackend,
        service: Service,
        instance_id: str,
        attributes: dict[str, str],
    ) -> None:
        state = self.state(backend)
        route53 = Route53(backend.account_id, backend.partition)
        route53.remove_records(state.records.pop((service.id, instance_id), []))
        namespace = backend.namespaces.get(self._namespace_of(service) or "")
        if namespace is None or namespace.type not in _DNS_TYPES or not service.dns_config:
            return
        zone_id = (namespace.dns_properties or {}).get("HostedZoneId")
        if not zone_id or self._world.faults.records_dropped(f"{service.name}.{namespace.name}"):
            return
        state.records[(service.id, instance_id)] = route53.put_instance_records(
            str(zone_id),
            f"{service.name}.{namespace.name}",
            service.dns_config,
            instance_id,
            attributes,
        )

    # ------------------------------------------------------------------ listing
    def all_operations(self, backend: ServiceDiscoveryBackend) -> list[Any]:
        """Replaces moto's list_operations (which drops every operation whose namespace is gone,
        e.g. instance operations, from the backend)."""
        return list(backend.operations.values())

    def list_namespaces(self, response: ServiceDiscoveryResponse) -> str:
        """https://docs.aws.amazon.com/cloud-map/latest/api/API_ListNamespaces.html"""
        params = self._params(response)
        backend = response.servicediscovery_backend
        filters = _NAMESPACE_FILTERS.parse(params.get("Filters"))
        namespaces = list(backend.namespaces.values())
        for flt in filters:
            namespaces = [
                ns
                for ns in namespaces
                if _matches(self._namespace_field(ns, flt.name), flt.condition, flt.values)
            ]
        page, token = _paginate(namespaces, params)
        body: dict[str, Any] = {"Namespaces": [self._namespace_summary(backend, ns) for ns in page]}
        if token:
            body["NextToken"] = token
        return json.dumps(body)

    @staticmethod
    def _namespace_field(namespace: Namespace, name: str) -> str | None:
        if name == "TYPE":
            return namespace.type
        if name == "NAME":
            return namespace.name
        if name == "HTTP_NAME":
            return (namespace.http_properties or {}).get("HttpName")
        if name == "RESOURCE_OWNER":
            return "SELF"
        return None

    def _namespace_summary(
        self, backend: ServiceDiscoveryBackend, namespace: Namespace
    ) -> dict[str, Any]:
        return {
            "Id": namespace.id,
            "Arn": namespace.arn,
            "ResourceOwner": backend.account_id,
            "Name": namespace.name,
            "Type": namespace.type,
            "Description": namespace.description,
            "ServiceCount": sum(
                1 for s in backend.services.values() if self._namespace_of(s) == namespace.id
            ),
            "Properties": {
                "DnsProperties": namespace.dns_properties,
                "HttpProperties": namespace.http_properties,
            },
            "CreateDate": namespace.created,
        }

    def list_services(self, response: ServiceDiscoveryResponse) -> str:
        """https://docs.aws.amazon.com/cloud-map/latest/api/API_ListServices.html"""
        params = self._params(response)
        backend = response.servicediscovery_backend
        filters = _SERVICE_FILTERS.parse(params.get("Filters"))
        services = list(backend.services.values())
        for flt in filters:
            if flt.name == "NAMESPACE_ID":
                wanted = [_namespace_id_of(value) for value in flt.values]
                services = [s for s in services if self._namespace_of(s) in wanted]
            elif flt.name == "RESOURCE_OWNER":
                services = services if flt.values[0] == "SELF" else []
        page, token = _paginate(services, params)
        body: dict[str, Any] = {
            "Services": [
                {
                    "Id": s.id,
                    "Arn": s.arn,
                    "ResourceOwner": backend.account_id,
                    "Name": s.name,
                    "Type": s.service_type,
                    "Description": s.description,
                    "InstanceCount": len(s.instances),
                    "DnsConfig": s.dns_config,
                    "HealthCheckConfig": s.health_check_config,
                    "HealthCheckCustomConfig": s.health_check_custom_config,
                    "CreateDate": s.created,
                    "CreatedByAccount": backend.account_id,
                }
                for s in page
            ]
        }
        if token:
            body["NextToken"] = token
        return json.dumps(body)

    def list_operations(self, response: ServiceDiscoveryResponse) -> str:
        """https://docs.aws.amazon.com/cloud-map/latest/api/API_ListOperations.html"""
        params = self._params(response)
        backend = response.servicediscovery_backend
        filters = _OPERATION_FILTERS.parse(params.get("Filters"))
        operations: Iterable[Any] = list(backend.operations.values())
        for flt in filters:
            operations = [
                op
                for op in operations
                if _matches(self._operation_field(op, flt.name), flt.condition, flt.values)
            ]
        page, token = _paginate(list(operations), params)
        body: dict[str, Any] = {"Operations": [{"Id": op.id, "Status": op.status} for op in page]}
        if token:
            body["NextToken"] = token
        return json.dumps(body)

    @staticmethod
    def _operation_field(operation: Any, name: str) -> str | float | None:
        targets: dict[str, str] = getattr(operation, "targets", {}) or {}
        if name == "NAMESPACE_ID":
            return targets.get("NAMESPACE")
        if name == "SERVICE_ID":
            return targets.get("SERVICE")
        if name == "STATUS":
            return str(operation.status)
        if name == "TYPE":
            return str(operation.operation_type)
        if name == "UPDATE_DATE":
            return _epoch(operation.updated)
        return None

    @staticmethod
    def _params(response: ServiceDiscoveryResponse) -> dict[str, Any]:
        body = response.body
        if not body:
            return {}
        parsed = json.loads(body)
        return parsed if isinstance(parsed, dict) else {}
