"""Application Auto Scaling of the ECS services' desired count (the spec's ``autoscaling``).

After its ECS service exists, a service with ``autoscaling`` gets a scalable target (min and max
count) and a target-tracking policy per metric (CPU, and memory when set), as steps/desired.py
renders them; a re-run changes only what differs, and a service whose spec no longer has
``autoscaling`` has its target deregistered (which deletes its policies). The scaler owns the
desired count then: the build never sends desiredCount to such a service after creating it.
The teardown deregisters a service's target before it deletes the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from envbuild_lambda.errors import aws_errors, error_code, map_client_error
from envbuild_lambda.parallel import pmap
from envbuild_lambda.spec import is_managed
from envbuild_lambda.steps import desired

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service

#: DescribeScalableTargets takes at most 50 resource ids.
DESCRIBE_BATCH = 50

#: The policies envbuild names (<ecs service>-cpu, <ecs service>-memory): only those are deleted.
OWN_POLICY_SUFFIXES = ("-cpu", "-memory")


def scalable_target(clients: Clients, resource_id: str) -> dict[str, Any] | None:
    with aws_errors(f"DescribeScalableTargets {resource_id}"):
        found = clients.autoscaling.describe_scalable_targets(
            ServiceNamespace="ecs",
            ResourceIds=[resource_id],
            ScalableDimension=desired.SCALABLE_DIMENSION,
        )["ScalableTargets"]
    return dict(found[0]) if found else None


def scaling_policies(clients: Clients, resource_id: str) -> dict[str, dict[str, Any]]:
    with aws_errors(f"DescribeScalingPolicies {resource_id}"):
        found = clients.autoscaling.describe_scaling_policies(
            ServiceNamespace="ecs",
            ResourceId=resource_id,
            ScalableDimension=desired.SCALABLE_DIMENSION,
        )["ScalingPolicies"]
    return {str(p["PolicyName"]): dict(p) for p in found}


def _differs(wanted: dict[str, Any], have: dict[str, Any]) -> bool:
    """A field of the rendered request that the described one lacks or has otherwise."""
    for key, value in wanted.items():
        if isinstance(value, dict):
            if not isinstance(have.get(key), dict) or _differs(value, have[key]):
                return True
        elif have.get(key) != value:
            return True
    return False


def converge(clients: Clients, spec: EnvironmentSpec, service: Service) -> list[str]:
    """Make the service's scalable target and policies the spec's; returns what was changed
    ("RegisterScalableTarget <resource>", ...): nothing on a re-run of the same spec."""
    resource = desired.scalable_resource_id(spec, service)
    target = desired.scalable_target(spec, service)
    have = scalable_target(clients, resource)
    changed: list[str] = []
    if target is None:
        if have is not None:
            deregister(clients, resource)
            changed.append(f"DeregisterScalableTarget {resource}")
        return changed
    if have is None or _differs(target, have):
        with aws_errors(f"RegisterScalableTarget {resource}"):
            clients.autoscaling.register_scalable_target(**target)
        changed.append(f"RegisterScalableTarget {resource}")
    policies = scaling_policies(clients, resource)
    wanted = desired.scaling_policies(spec, service)
    for policy in wanted:
        name = policy["PolicyName"]
        current = policies.get(name)
        if current is None or _differs(policy, current):
            with aws_errors(f"PutScalingPolicy {name}"):
                clients.autoscaling.put_scaling_policy(**policy)
            changed.append(f"PutScalingPolicy {name}")
    names = {p["PolicyName"] for p in wanted}
    for name in policies:
        own = name.startswith(service.ecs_service_name) and name.endswith(OWN_POLICY_SUFFIXES)
        if own and name not in names:
            with aws_errors(f"DeleteScalingPolicy {name}"):
                clients.autoscaling.delete_scaling_policy(
                    PolicyName=name,
                    ServiceNamespace="ecs",
                    ResourceId=resource,
                    ScalableDimension=desired.SCALABLE_DIMENSION,
                )
            changed.append(f"DeleteScalingPolicy {name}")
    return changed


def deregister(clients: Clients, resource_id: str) -> bool:
    """Deregister the service's scalable target (and so its policies); True if there was one.
    Before its ECS service is deleted: a target left behind would outlive the service."""
    try:
        clients.autoscaling.deregister_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=resource_id,
            ScalableDimension=desired.SCALABLE_DIMENSION,
        )
    except ClientError as error:
        if error_code(error) == "ObjectNotFoundException":
            return False
        raise map_client_error(error, f"DeregisterScalableTarget {resource_id}") from error
    return True


def resource_id(cluster: str, ecs_service_name: str) -> str:
    """Application Auto Scaling's id of an ECS service: service/<cluster name>/<service name>."""
    return f"service/{cluster.rsplit('/', 1)[-1]}/{ecs_service_name}"


def existing_targets(clients: Clients, resource_ids: list[str]) -> set[str]:
    """The resource ids among ``resource_ids`` that have a scalable target."""
    found: set[str] = set()
    for start in range(0, len(resource_ids), DESCRIBE_BATCH):
        batch = resource_ids[start : start + DESCRIBE_BATCH]
        with aws_errors(f"DescribeScalableTargets ({len(batch)} services)"):
            pages = clients.autoscaling.get_paginator("describe_scalable_targets").paginate(
                ServiceNamespace="ecs",
                ResourceIds=batch,
                ScalableDimension=desired.SCALABLE_DIMENSION,
            )
            found |= {str(t["ResourceId"]) for page in pages for t in page["ScalableTargets"]}
    return found


def converge_all(clients: Clients, spec: EnvironmentSpec, max_workers: int) -> list[str]:
    """``converge`` for the services envbuild manages that have autoscaling in the spec, or a
    scalable target the spec no longer wants; a service envbuild does not manage (adopted) is
    never given or deprived of a target. One DescribeScalableTargets per 50 services on a
    re-run without autoscaling anywhere."""
    from envbuild_lambda.steps.services import describe_services, ecs_tags

    ids = {s.name: desired.scalable_resource_id(spec, s) for s in spec.services}
    with_target = existing_targets(clients, list(ids.values()))
    candidates = [
        s for s in spec.services if s.autoscaling is not None or ids[s.name] in with_target
    ]
    if not candidates:
        return []
    described = describe_services(
        clients, spec.cluster, (s.ecs_service_name for s in candidates), tags=True
    )
    managed = [
        s
        for s in candidates
        if s.ecs_service_name in described
        and described[s.ecs_service_name].get("status") == "ACTIVE"
        and is_managed(ecs_tags(described[s.ecs_service_name]), spec.environment)
    ]
    return [
        c
        for changes in pmap(lambda s: converge(clients, spec, s), managed, max_workers)
        for c in changes
    ]
