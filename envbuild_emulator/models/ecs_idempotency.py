"""ECS CreateService idempotency, which moto lacks (it replaces the service and starts new tasks).

Per the ECS API reference (CreateService, ``clientToken``): a repeat request with the same client
token returns the service it created; any other CreateService for the name of an ACTIVE (or
DRAINING) service in the cluster fails with InvalidParameterException "Creation of service was
not idempotent."
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from envbuild_emulator.moto_internals import Patcher, lookup

ECS_RESPONSES = "moto.ecs.responses"


class EcsCreateServiceIdempotency:
    def __init__(self) -> None:
        self._patcher = Patcher()
        self._lock = threading.Lock()
        #: (account, region, cluster, service) -> client token of the request that created it
        self._tokens: dict[tuple[str, str, str, str], str] = {}

    def install(self) -> EcsCreateServiceIdempotency:
        action_result = lookup("moto.core.responses", "ActionResult")
        invalid = lookup("moto.ecs.exceptions", "InvalidParameterException")
        tokens, lock = self._tokens, self._lock

        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            def create_service(response: Any) -> Any:
                backend = response.ecs_backend
                cluster = backend._get_cluster(response._get_param("cluster", "default"))
                name = response._get_param("serviceName")
                token = response._get_param("clientToken") or ""
                key = (backend.account_id, backend.region_name, cluster.name, name)
                with lock:
                    existing = backend.services.get(f"{cluster.name}:{name}")
                    if existing is not None and existing.status in ("ACTIVE", "DRAINING"):
                        if token and tokens.get(key) == token:
                            return action_result({"service": existing})
                        raise invalid("Creation of service was not idempotent.")
                    result = original(response)
                    tokens[key] = token
                    return result

            return create_service

        self._patcher.replace(ECS_RESPONSES, "EC2ContainerServiceResponse.create_service", wrap)
        return self

    def uninstall(self) -> None:
        self._patcher.restore()
