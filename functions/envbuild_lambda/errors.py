"""Domain errors and the one place where AWS ``ClientError`` codes are mapped to them.

A handler exception's class name becomes the ``Error`` of the failed Task (Lambda's errorType),
so these names are what the state machine's Retry/Catch match and what a user sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError


class EnvbuildError(Exception):
    """Base of every error envbuild raises on purpose."""


class InvalidSpec(EnvbuildError):
    """The environment spec is invalid; the message names every bad field."""


class AwsThrottled(EnvbuildError):
    """AWS throttled a request even after the SDK's own retries; the state machine retries the step."""


class AwsUnavailable(EnvbuildError):
    """AWS answered 5xx or the connection failed, even after the SDK's own retries; the state
    machine retries the step (every step is idempotent)."""


class AccessDenied(EnvbuildError):
    """The function's role may not make a call (a template policy is missing an action)."""


class ResourceNotFound(EnvbuildError):
    """A resource the spec names does not exist (cluster, VPC, namespace…)."""


class NamespaceConflict(EnvbuildError):
    """The namespace cannot be created: the name clashes with a domain already in the VPC."""


class NamespaceOperationFailed(EnvbuildError):
    """Cloud Map reported FAIL for the namespace operation (ErrorCode and ErrorMessage in the message)."""


class ServiceConflict(EnvbuildError):
    """A service with the same name exists but cannot be adopted (e.g. it is DRAINING)."""


class DeploymentFailed(EnvbuildError):
    """ECS's deployment circuit breaker marked a service's deployment of the spec's task
    definition FAILED (tasks failed to start); the message names each service, the reason, the
    failed task count, the last error and the revision ECS rolled back to. Not retried."""


class PreflightFailed(EnvbuildError):
    """Something the build needs is missing or wrong; the message names each resource and the fix."""


class EnvironmentBusy(EnvbuildError):
    """Another execution is building this environment; the message names it."""


class EnvironmentMoved(EnvbuildError):
    """The spec puts the environment in another cluster, namespace or VPC than its record, which
    still holds resources there; the message names each field and what to do."""


class DiscoveryMismatch(EnvbuildError):
    """A DNS name does not answer with exactly the running tasks' IPs."""


class ParameterConflict(EnvbuildError):
    """An output SSM parameter exists and was not created by envbuild for this environment."""


class ProbeFailed(EnvbuildError):
    """The in-VPC DNS probe task could not resolve every name (or did not finish in time)."""


class InvalidPlan(EnvbuildError):
    """A teardown input (removal plan or options) is invalid; the message names every bad field."""


class ResourceInUse(EnvbuildError):
    """AWS refused a deletion because something still depends on the resource (deletion order)."""


class CloudMapOperationFailed(EnvbuildError):
    """A Cloud Map operation ended FAIL (a static instance registration; a teardown's
    deregistration or namespace deletion)."""


class AwsRequestFailed(EnvbuildError):
    """Any other error answered by AWS."""


THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
UNAVAILABLE_CODES = frozenset(
    {
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerErrorException",
        "ServerException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
NOT_FOUND_CODES = frozenset(
    {
        "ClusterNotFoundException",
        "NamespaceNotFound",
        "ServiceNotFound",
        "ServiceNotFoundException",
        "OperationNotFound",
        "InstanceNotFound",
        "NoSuchHostedZone",
        "ResourceNotFoundException",
        "InvalidVpcID.NotFound",
        "InvalidSubnetID.NotFound",
        "InvalidGroup.NotFound",
    }
)
CONFLICT_CODES = {
    "ConflictingDomainExists": NamespaceConflict,
    "ResourceInUse": ResourceInUse,
}


def map_client_error(error: ClientError, action: str) -> EnvbuildError:
    """Translate an AWS error answer into the domain error a user can act on."""
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = f"{action}: {code}: {details.get('Message', '')}".rstrip(": ")
    if code in THROTTLING_CODES:
        return AwsThrottled(message)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in UNAVAILABLE_CODES or status >= 500:
        return AwsUnavailable(message)
    if code in ACCESS_DENIED_CODES:
        return AccessDenied(message + " (check the function's policy in template.yaml)")
    if code in NOT_FOUND_CODES:
        return ResourceNotFound(message)
    conflict = CONFLICT_CODES.get(code)
    if conflict is not None:
        return conflict(message)
    return AwsRequestFailed(message)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Map any ``ClientError`` raised inside the block; ``action`` says what was being done."""
    try:
        yield
    except ClientError as error:
        raise map_client_error(error, action) from error
