"""AWS error responses moto does not have, shaped as the service models define them."""

from __future__ import annotations

import json

from moto.core.exceptions import JsonRESTError

__all__ = [
    "CloudMapError",
    "DuplicateRequest",
    "InvalidInput",
    "NamespaceAlreadyExists",
    "NamespaceNotFound",
    "ResourceInUse",
    "ServiceAlreadyExists",
    "ServiceNotFound",
]


class CloudMapError(JsonRESTError):
    """A Cloud Map (awsJson1_1) error; extra members go into the body as the API names them."""

    code = 400

    def __init__(self, error_type: str, message: str, **members: str) -> None:
        super().__init__(error_type, message)
        body: dict[str, str] = {"__type": error_type, "message": message, "Message": message}
        body.update({key: value for key, value in members.items() if value})
        self.description = json.dumps(body)


# https://docs.aws.amazon.com/cloud-map/latest/api/API_CreatePrivateDnsNamespace.html#API_CreatePrivateDnsNamespace_Errors
class NamespaceAlreadyExists(CloudMapError):
    def __init__(self, namespace_id: str, creator_request_id: str | None) -> None:
        super().__init__(
            "NamespaceAlreadyExists",
            f"Namespace {namespace_id} already exists.",
            NamespaceId=namespace_id,
            CreatorRequestId=creator_request_id or "",
        )


class DuplicateRequest(CloudMapError):
    def __init__(self, operation_id: str) -> None:
        super().__init__(
            "DuplicateRequest",
            "The operation is already in progress.",
            DuplicateOperationId=operation_id,
        )


# https://docs.aws.amazon.com/cloud-map/latest/api/API_CreateService.html#API_CreateService_Errors
class ServiceAlreadyExists(CloudMapError):
    def __init__(self, service_id: str, service_arn: str, creator_request_id: str | None) -> None:
        super().__init__(
            "ServiceAlreadyExists",
            f"Service {service_id} already exists.",
            ServiceId=service_id,
            ServiceArn=service_arn,
            CreatorRequestId=creator_request_id or "",
        )


class NamespaceNotFound(CloudMapError):
    def __init__(self, namespace_id: str) -> None:
        super().__init__("NamespaceNotFound", f"Namespace not found: {namespace_id}")


class ServiceNotFound(CloudMapError):
    def __init__(self, service_id: str) -> None:
        super().__init__("ServiceNotFound", f"Service not found: {service_id}")


# https://docs.aws.amazon.com/cloud-map/latest/api/API_DeleteNamespace.html#API_DeleteNamespace_Errors
class ResourceInUse(CloudMapError):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceInUse", message)


class InvalidInput(CloudMapError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidInput", message)
