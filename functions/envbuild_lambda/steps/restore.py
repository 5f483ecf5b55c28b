"""A failed build's rollback, first part: put back what the build changed on resources that
existed before it (the ECS services it updated, the registries' DNS records, the static
instances it registered, changed or deregistered, the log groups' retention, the services'
Application Auto Scaling targets and policies), as Create Services recorded them
(``ServicesState.previous``). The teardown workflow then removes what the build created, and
never a task definition revision that a service runs (teardown.in_use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envbuild_lambda.errors import aws_errors
from envbuild_lambda.parallel import pmap
from envbuild_lambda.steps import autoscaling, desired, diff
from envbuild_lambda.steps.task_definitions import set_retention

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients
    from envbuild_lambda.spec import EnvironmentSpec
    from envbuild_lambda.state import Restore


def restore(
    clients: Clients,
    spec: EnvironmentSpec,
    registries: dict[str, str],
    previous: Restore,
    max_workers: int,
    build: str | None = None,
) -> list[str]:
    """UpdateService (ECS) of each updated service with its fields as they were, Cloud Map
    UpdateService of each updated registry's DNS records, RegisterInstance of each changed or
    deregistered static instance with its attributes as they were and DeregisterInstance of
    each one the build registered. Each call sets a state, so repeating it is harmless. Returns
    what was restored."""

    def service(name: str) -> str:
        with aws_errors(f"UpdateService (ECS) {name} in cluster {spec.cluster_name} (restore)"):
            clients.ecs.update_service(
                cluster=spec.cluster, service=name, **previous.services[name]
            )
        return f"ecsService {name}"

    def registry(name: str) -> str:
        with aws_errors(f"UpdateService (Cloud Map) {name} (restore)"):
            clients.servicediscovery.update_service(
                Id=registries[name],
                Service={"DnsConfig": {"DnsRecords": previous.registries[name]}},  # type: ignore[typeddict-item]
            )
        return f"registry {name}"

    def instance(key: str) -> str:
        name, instance_id = key.split("/", 1)
        attributes = previous.instances[key]
        if attributes is None:
            with aws_errors(f"DeregisterInstance {instance_id} in {name} (restore)"):
                clients.servicediscovery.deregister_instance(
                    ServiceId=registries[name], InstanceId=instance_id
                )
        else:
            with aws_errors(f"RegisterInstance {instance_id} in {name} (restore)"):
                clients.servicediscovery.register_instance(
                    ServiceId=registries[name],
                    InstanceId=instance_id,
                    # this rollback's own token: Cloud Map answers a repeated token with the
                    # first request's operation
                    CreatorRequestId=spec.request_token(
                        "restore", registries[name], instance_id, build or ""
                    ),
                    Attributes=attributes,
                )
        return f"instance {key}"

    def log_group(name: str) -> str:
        set_retention(clients, name, previous.logGroups[name])
        return f"logGroup {name}"

    def scaling(name: str) -> str:
        resource = f"service/{spec.cluster_name}/{name}"
        was = previous.scaling[name]
        if was is None:
            autoscaling.deregister(clients, resource)
            return f"autoscaling {name}"
        with aws_errors(f"RegisterScalableTarget {resource} (restore)"):
            clients.autoscaling.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=resource,
                ScalableDimension=desired.SCALABLE_DIMENSION,
                MinCapacity=was["MinCapacity"],
                MaxCapacity=was["MaxCapacity"],
            )
        policies = was.get("policies", [])
        for policy in policies:
            with aws_errors(f"PutScalingPolicy {policy['PolicyName']} (restore)"):
                clients.autoscaling.put_scaling_policy(**policy)
        kept = {p["PolicyName"] for p in policies}
        for policy_name in autoscaling.scaling_policies(clients, resource):
            own = diff.own_policy_field(name, policy_name) is not None
            if own and policy_name not in kept:
                autoscaling.delete_policy(clients, resource, policy_name, " (restore)")
        return f"autoscaling {name}"

    done = pmap(service, sorted(previous.services), max_workers)
    done += pmap(log_group, sorted(previous.logGroups), max_workers)
    done += pmap(scaling, sorted(previous.scaling), max_workers)
    done += pmap(registry, sorted(n for n in previous.registries if n in registries), max_workers)
    done += pmap(
        instance,
        sorted(k for k in previous.instances if k.split("/", 1)[0] in registries),
        max_workers,
    )
    return done
