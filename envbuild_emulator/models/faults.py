"""Fault injection: make the emulated AWS fail the way the real one can."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Faults", "OperationFailure"]


@dataclass(frozen=True)
class OperationFailure:
    """How a Cloud Map operation ends when it fails (GetOperation ErrorCode / ErrorMessage)."""

    error_code: str
    error_message: str


class Faults:
    """Faults armed by tests or by the CLI; consulted by the models (thread-safe).

    Faults are configuration of the World, not AWS data: moto resets do not clear them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._namespace_failures: dict[str, list[OperationFailure]] = {}
        self._task_failures: dict[str, str] = {}
        self._unregistered: set[str] = set()
        self._dropped_records: set[str] = set()
        self._unhealthy: set[str] = set()

    def fail_namespace_operation(
        self,
        name: str,
        error_code: str = "CANNOT_CREATE_HOSTED_ZONE",
        message: str = "Unable to create the hosted zone for the namespace.",
    ) -> None:
        """The next creation of namespace ``name`` ends FAIL with this ErrorCode/ErrorMessage.

        Error codes AWS documents for operations: ACCESS_DENIED, CANNOT_CREATE_HOSTED_ZONE,
        EXPIRED_TOKEN, HOSTED_ZONE_NOT_FOUND, INTERNAL_FAILURE, INVALID_CHANGE_BATCH,
        THROTTLED_REQUEST (https://docs.aws.amazon.com/cloud-map/latest/api/API_Operation.html).
        Arming it twice fails the next two creations.
        """
        with self._lock:
            self._namespace_failures.setdefault(name, []).append(
                OperationFailure(error_code, message)
            )

    def take_namespace_failure(self, name: str) -> OperationFailure | None:
        """Consume the failure armed for the next creation of ``name`` (models call this)."""
        with self._lock:
            queue = self._namespace_failures.get(name)
            if not queue:
                return None
            failure = queue.pop(0)
            if not queue:
                del self._namespace_failures[name]
            return failure

    def tasks_fail_to_start(
        self,
        family_or_service: str,
        reason: str = (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
            "failed to resolve ref: not found"
        ),
    ) -> None:
        """Every task started for this ECS service name, task-definition family or one
        revision ("family:revision", e.g. a new image) stops before RUNNING with
        ``stoppedReason`` = ``reason`` (until ``clear_tasks_fail_to_start``)."""
        with self._lock:
            self._task_failures[family_or_service] = reason

    def clear_tasks_fail_to_start(self, family_or_service: str) -> None:
        with self._lock:
            self._task_failures.pop(family_or_service, None)

    def task_start_failure(
        self, service_name: str, family: str, revision: str | None = None
    ) -> str | None:
        """stoppedReason for a task of this service/family/revision ("family:revision") if it
        must fail (models call this)."""
        with self._lock:
            return (
                self._task_failures.get(service_name)
                or self._task_failures.get(family)
                or (self._task_failures.get(revision) if revision else None)
            )

    def containers_unhealthy(self, family_or_service: str) -> None:
        """The health check of every task started for this ECS service name, task-definition
        family or revision ("family:revision") fails: the task turns UNHEALTHY after its
        ``retries`` checks, leaves DNS and is replaced (until ``clear``)."""
        with self._lock:
            self._unhealthy.add(family_or_service)

    def container_unhealthy(
        self, service_name: str, family: str, revision: str | None = None
    ) -> bool:
        with self._lock:
            return bool({service_name, family, revision or ""} & self._unhealthy)

    def tasks_not_registered(self, service_name: str) -> None:
        """Tasks of this ECS service run but ECS never registers them in Cloud Map (as when the
        registration fails: the service's events say so), until ``clear``."""
        with self._lock:
            self._unregistered.add(service_name)

    def registration_blocked(self, service_name: str) -> bool:
        with self._lock:
            return service_name in self._unregistered

    def drop_dns_records(self, dns_name: str) -> None:
        """Cloud Map keeps the instances of ``dns_name`` (e.g. web.workshop.local) but their
        Route 53 A records are not written (as when someone deletes them in the hosted zone)."""
        with self._lock:
            self._dropped_records.add(dns_name.rstrip(".").lower())

    def records_dropped(self, dns_name: str) -> bool:
        with self._lock:
            return dns_name.rstrip(".").lower() in self._dropped_records

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._namespace_failures.clear()
            self._task_failures.clear()
            self._unregistered.clear()
            self._dropped_records.clear()
            self._unhealthy.clear()
