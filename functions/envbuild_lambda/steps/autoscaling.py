"""Application Auto Scaling of the ECS services' desired count (the spec's ``autoscaling``).

After its ECS service exists, a service with ``autoscaling`` gets a scalable target (min and max
count) and a target-tracking policy per metric (CPU, and memory when set), as steps/desired.py
renders them; the one diff (diff.autoscaling_change) compares them with the account, and the
build sends exactly the fields of its row: a re-run changes only what differs, and a service
whose spec no longer has ``autoscaling`` has its target deregistered (which deletes its
policies). The scaler owns the
desired count then: the build never sends desiredCount to such a service after creating it.
The teardown deregisters a service's target before it deletes the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from envbuild_lambda.errors import aws_errors, error_code, map_client_error
from envbuild_lambda.parallel import pmap
from envbuild_lambda.spec import is_managed
from envbuild_lambda.steps import desired, diff

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service
    from envbuild_lambda.steps.diff import Change

#: DescribeScalableTargets takes at most 50 resource ids.
DESCRIBE_BATCH = 50


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


def read(
    clients: Clients, spec: EnvironmentSpec, service: Service, *, reads: bool = True
) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The service's scalable target (None: none) and its policies by name. ``reads`` False:
    known to have no target (DescribeScalableTargets of its batch said so): no call."""
    resource = desired.scalable_resource_id(spec, service)
    have = scalable_target(clients, resource) if reads else None
    return have, scaling_policies(clients, resource) if have is not None else {}


def change(
    spec: EnvironmentSpec,
    service: Service,
    have: dict[str, Any] | None,
    policies: dict[str, dict[str, Any]],
) -> Change | None:
    """The service's row of the one diff (diff.autoscaling_change)."""
    return diff.autoscaling_change(
        service.ecs_service_name,
        desired.scalable_target(spec, service),
        desired.scaling_policies(spec, service),
        have,
        policies,
    )


def apply(clients: Clients, spec: EnvironmentSpec, service: Service, row: Change) -> list[str]:
    """Send exactly the row's fields: RegisterScalableTarget (created, or minCount/maxCount
    changed), PutScalingPolicy per target value set, DeleteScalingPolicy per one the spec
    dropped, DeregisterScalableTarget for ``remove``. Returns the calls made."""
    resource = desired.scalable_resource_id(spec, service)
    if row.action == "remove":
        deregister(clients, resource)
        return [f"DeregisterScalableTarget {resource}"]
    if row.action not in ("create", "update"):
        return []
    changed: list[str] = []
    target = desired.scalable_target(spec, service)
    if target is not None and (
        row.action == "create" or any(f in row.fields for f in diff.TARGET_FIELDS.values())
    ):
        with aws_errors(f"RegisterScalableTarget {resource}"):
            clients.autoscaling.register_scalable_target(**target)
        changed.append(f"RegisterScalableTarget {resource}")
    wanted = {
        diff.own_policy_field(service.ecs_service_name, p["PolicyName"]): p
        for p in desired.scaling_policies(spec, service)
    }
    for suffix, field in diff.POLICY_FIELDS.items():
        if field not in row.fields:
            continue
        policy = wanted.get(field)
        name = service.ecs_service_name + suffix
        if policy is not None:
            with aws_errors(f"PutScalingPolicy {name}"):
                clients.autoscaling.put_scaling_policy(**policy)
            changed.append(f"PutScalingPolicy {name}")
        else:
            delete_policy(clients, resource, name)
            changed.append(f"DeleteScalingPolicy {name}")
    return changed


def before(
    service: Service, have: dict[str, Any] | None, policies: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The target as it is before a build changes it (a failed build's rollback restores it):
    its min and max and envbuild's policies; None: no target (the rollback deregisters one)."""
    if have is None:
        return None
    return {
        "MinCapacity": have.get("MinCapacity"),
        "MaxCapacity": have.get("MaxCapacity"),
        "policies": [
            {k: p[k] for k in RESTORED_POLICY_FIELDS if k in p}
            for n, p in sorted(policies.items())
            if diff.own_policy_field(service.ecs_service_name, n) is not None
        ],
    }


#: The fields of a described policy that PutScalingPolicy takes back.
RESTORED_POLICY_FIELDS = (
    "PolicyName",
    "ServiceNamespace",
    "ResourceId",
    "ScalableDimension",
    "PolicyType",
    "TargetTrackingScalingPolicyConfiguration",
)


def delete_policy(clients: Clients, resource_id: str, policy_name: str, why: str = "") -> None:
    """DeleteScalingPolicy of one of the service's policies (``why``: added to an error)."""
    with aws_errors(f"DeleteScalingPolicy {policy_name}{why}"):
        clients.autoscaling.delete_scaling_policy(
            PolicyName=policy_name,
            ServiceNamespace="ecs",
            ResourceId=resource_id,
            ScalableDimension=desired.SCALABLE_DIMENSION,
        )


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


def converge_all(
    clients: Clients, spec: EnvironmentSpec, max_workers: int
) -> tuple[list[Change], dict[str, dict[str, Any] | None]]:
    """The autoscaling rows (``change``) of the services envbuild manages that have autoscaling
    in the spec or a scalable target, each applied (``apply``); a service envbuild does not
    manage (adopted) is never given or deprived of a target. Returns the rows and, per ECS
    service changed, its target as it was (``before``: a rollback restores it). One
    DescribeScalableTargets per 50 services on a re-run without autoscaling anywhere."""
    from envbuild_lambda.steps.services import describe_services, ecs_tags

    ids = {s.name: desired.scalable_resource_id(spec, s) for s in spec.services}
    with_target = existing_targets(clients, list(ids.values()))
    candidates = [
        s for s in spec.services if s.autoscaling is not None or ids[s.name] in with_target
    ]
    if not candidates:
        return [], {}
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

    def one(service: Service) -> tuple[Change | None, dict[str, Any] | None]:
        have, policies = read(clients, spec, service, reads=ids[service.name] in with_target)
        row = change(spec, service, have, policies)
        if row is None or row.action == "unchanged":
            return row, None
        apply(clients, spec, service, row)
        return row, before(service, have, policies)

    rows: list[Change] = []
    previous: dict[str, dict[str, Any] | None] = {}
    for row, was in pmap(one, managed, max_workers):
        if row is None:
            continue
        rows.append(row)
        if row.action != "unchanged":
            previous[row.name] = was
    return rows, previous
