"""Ownership: which existing resources of the spec's derived names envbuild may use, and which are
conflicts (docs/convergence.md, "What envbuild adopts and what is a conflict").

A build never changes what it does not own. So a resource it would write into, register into or
update is a conflict unless it is envbuild's for this environment:

- log group ``/ecs/<environment>_<service>``: the tasks would write into it; a conflict unless
  tagged envbuild:managed=true and envbuild:environment=<environment>.
- task definition family ``<environment>_<service>``: the build registers revisions into it; a
  conflict if any revision (ACTIVE or INACTIVE) is not tagged so.
- ECS service ``<service>-service``: the build updates it; a conflict unless tagged so.
- Cloud Map service (registry) ``<service>`` in the namespace: the build registers its tasks
  into it (its DNS name answers with them); a conflict if it is envbuild's for another
  environment (tagged so, even when empty), or if it holds an instance envbuild did not
  register: neither a task of the spec's ECS service in the spec's cluster (the attributes ECS
  sets: ECS_CLUSTER_NAME, ECS_SERVICE_NAME) nor one of the spec's static instances.

Read-only: Preflight fails with every conflict (PreflightFailed) and the plan shows each as a row
with action ``conflict``, before anything is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from envbuild_lambda.errors import aws_errors, map_client_error
from envbuild_lambda.parallel import pmap
from envbuild_lambda.spec import TAG_ENVIRONMENT, TAG_MANAGED, is_managed
from envbuild_lambda.steps import desired
from envbuild_lambda.steps.namespace import cloudmap_tags, find_namespace
from envbuild_lambda.steps.registries import existing_registries
from envbuild_lambda.steps.services import describe_services, ecs_tags, list_instances
from envbuild_lambda.steps.task_definitions import log_group_tags

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import ServiceTypeDef

    from envbuild_lambda.aws import Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service

Kind = Literal["registry", "logGroup", "taskDefinition", "ecsService"]
LABELS: dict[str, str] = {
    "registry": "Cloud Map service",
    "logGroup": "log group",
    "taskDefinition": "task definition family",
    "ecsService": "ECS service",
}
#: Revisions or instances named in one conflict, at most.
SHOWN = 5


@dataclass(frozen=True)
class Conflict:
    """A resource of a name the spec derives that exists and that envbuild must not touch."""

    service: str
    type: Kind
    name: str
    #: What is wrong, e.g. "exists and is not envbuild's (tags: owner=team-a)".
    reason: str
    #: What the user can do about it.
    fix: str

    def problem(self) -> str:
        return f"{LABELS[self.type]} {self.name} {self.reason}: {self.fix}"


def _owner(tags: dict[str, str]) -> str:
    """Whose a resource is, from its tags: "is envbuild's for environment X" or "is not envbuild's"."""
    if tags.get(TAG_MANAGED) == "true" and tags.get(TAG_ENVIRONMENT):
        return f"is envbuild's for environment {tags[TAG_ENVIRONMENT]}"
    return "is not envbuild's (not tagged envbuild:managed=true)"


def _shown(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (
        f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    )


def log_group_conflict(
    clients: Clients, spec: EnvironmentSpec, service: Service
) -> Conflict | None:
    name = service.log_group(spec.environment)
    with aws_errors(f"DescribeLogGroups {name}"):
        found = clients.logs.describe_log_groups(logGroupNamePrefix=name, limit=1)["logGroups"]
    if not found or found[0]["logGroupName"] != name:
        return None
    tags = log_group_tags(clients, dict(found[0]))
    if is_managed(tags, spec.environment):
        return None
    return Conflict(
        service.name,
        "logGroup",
        name,
        f"exists and {_owner(tags)}; the tasks of service {service.name} would write into it",
        "delete it or rename it, or give the service another name",
    )


def _revisions(clients: Clients, family: str) -> list[str]:
    """Every ACTIVE and INACTIVE revision of exactly this family ("family:revision")."""
    arns: list[str] = []
    for status in ("ACTIVE", "INACTIVE"):
        with aws_errors(f"ListTaskDefinitions {family} {status}"):
            pages = clients.ecs.get_paginator("list_task_definitions").paginate(
                familyPrefix=family, status=status
            )
            arns += [arn for page in pages for arn in page["taskDefinitionArns"]]
    revisions = [arn.rsplit("/", 1)[-1] for arn in arns]
    return sorted(
        {r for r in revisions if r.rsplit(":", 1)[0] == family},
        key=lambda r: int(r.rsplit(":", 1)[1]),
    )


def _revision_tags(clients: Clients, revision: str) -> dict[str, str]:
    try:
        answer = clients.ecs.describe_task_definition(taskDefinition=revision, include=["TAGS"])
    except ClientError as error:
        raise map_client_error(error, f"DescribeTaskDefinition {revision}") from error
    return {tag.get("key", ""): tag.get("value", "") for tag in answer.get("tags", [])}


def family_conflict(
    clients: Clients, spec: EnvironmentSpec, service: Service, max_workers: int
) -> Conflict | None:
    family = service.family(spec.environment)
    revisions = _revisions(clients, family)
    tags = pmap(lambda r: _revision_tags(clients, r), revisions, max_workers)
    foreign = [
        (revision, t)
        for revision, t in zip(revisions, tags, strict=True)
        if not is_managed(t, spec.environment)
    ]
    if not foreign:
        return None
    owners = sorted({_owner(t) for _, t in foreign})
    return Conflict(
        service.name,
        "taskDefinition",
        family,
        f"has revision(s) not envbuild's for environment {spec.environment}:"
        f" {_shown([r for r, _ in foreign])} ({'; '.join(owners)}); envbuild would register"
        " its revisions into that family",
        "use another environment or service name, or deregister and delete those revisions",
    )


def ecs_service_conflict(
    spec: EnvironmentSpec, service: Service, current: ServiceTypeDef | None
) -> Conflict | None:
    if current is None or current.get("status") != "ACTIVE":
        return None  # INACTIVE: created anew; DRAINING: a preflight problem of its own
    tags = ecs_tags(current)
    if is_managed(tags, spec.environment):
        return None
    return Conflict(
        service.name,
        "ecsService",
        service.ecs_service_name,
        f"exists in cluster {spec.cluster_name} and {_owner(tags)}; envbuild would update it"
        " (task definition, desired count) and register its tasks",
        "give the service another name, use another cluster, or delete that ECS service",
    )


def _is_envbuilds(
    instance: Any, spec: EnvironmentSpec, service: Service, recorded: frozenset[str]
) -> bool:
    """A task of the spec's ECS service in the spec's cluster, a static instance the
    environment record says envbuild registered ("<service>/<id>"), or one with the spec's id
    and exactly the attributes envbuild registers."""
    if f"{service.name}/{instance.id}" in recorded:
        return True
    static = next((i for i in service.instances if i.id == instance.id), None)
    if static is not None:
        # Not recorded (another team's, or registered before the record kept instances): the
        # spec's id alone does not make it envbuild's, only exactly what envbuild registers.
        return dict(instance.attributes) == desired.instance_attributes(service, static)
    attributes = instance.attributes
    return bool(
        attributes.get("ECS_CLUSTER_NAME") == spec.cluster_name
        and attributes.get("ECS_SERVICE_NAME") == service.ecs_service_name
    )


def registry_conflict(
    clients: Clients,
    spec: EnvironmentSpec,
    service: Service,
    registry_id: str | None,
    recorded: frozenset[str] = frozenset(),
) -> Conflict | None:
    if registry_id is None:
        return None
    with aws_errors(f"GetService (Cloud Map) {registry_id}"):
        registry = clients.servicediscovery.get_service(Id=registry_id)["Service"]
    arn = registry.get("Arn", "")
    tags = cloudmap_tags(clients, arn) if arn else {}
    has = sorted(r["Type"] for r in registry.get("DnsConfig", {}).get("DnsRecords", []))
    wants = sorted(r["Type"] for r in desired.dns_records(service))
    if has != wants:
        # Cloud Map UpdateService changes a record's TTL, never the record types: "To change a
        # record type, you need to delete the service and recreate it with a new DnsConfig".
        return Conflict(
            service.name,
            "registry",
            f"{service.name} ({registry_id})",
            f"has DNS records {'+'.join(has) or 'none'} and the spec's dnsRecords are"
            f" {'+'.join(wants)}; Cloud Map cannot change a registry's record types",
            "keep the registry's dnsRecords, or remove the service from the spec (prune: true),"
            " build, then add it back with the new dnsRecords",
        )
    if tags.get(TAG_MANAGED) == "true" and tags.get(TAG_ENVIRONMENT) != spec.environment:
        return Conflict(
            service.name,
            "registry",
            f"{service.name} ({registry_id})",
            f"in namespace {spec.namespace.name} {_owner(tags)}: its DNS name is that"
            " environment's, even while it holds no instance",
            "give the service another name or use another namespace",
        )
    foreign = [
        f"{i.id} ({i.ipv4 or 'no IPv4'})"
        for i in list_instances(clients, registry_id)
        if not _is_envbuilds(i, spec, service, recorded)
    ]
    if not foreign:
        return None
    return Conflict(
        service.name,
        "registry",
        f"{service.name} ({registry_id})",
        f"in namespace {spec.namespace.name} holds instance(s) envbuild did not register:"
        f" {_shown(foreign)}; {service.dns_name(spec.namespace.name)} would answer with"
        " envbuild's tasks beside them",
        "give the service another name or use another namespace, or deregister those instances",
    )


def find_conflicts(
    clients: Clients,
    spec: EnvironmentSpec,
    max_workers: int,
    *,
    cluster_exists: bool = True,
    recorded_instances: frozenset[str] = frozenset(),
) -> list[Conflict]:
    """Every conflict of every service of the spec, in spec order (registry, log group, task
    definition family, ECS service for each). Reads only. ``recorded_instances``: the static
    instances the environment record says envbuild registered."""
    ns = spec.namespace
    namespace = find_namespace(clients, ns.name, ns.vpcId)
    registries = (
        existing_registries(clients, namespace.id) if namespace is not None and namespace.id else {}
    )
    current = (
        describe_services(
            clients, spec.cluster, (s.ecs_service_name for s in spec.services), tags=True
        )
        if cluster_exists  # else a preflight problem of its own
        else {}
    )

    def of(service: Service) -> list[Conflict]:
        found = [
            registry_conflict(
                clients, spec, service, registries.get(service.name), recorded_instances
            ),
            log_group_conflict(clients, spec, service),
            family_conflict(clients, spec, service, 1),
            ecs_service_conflict(spec, service, current.get(service.ecs_service_name)),
        ]
        return [c for c in found if c is not None]

    return [c for conflicts in pmap(of, spec.services, max_workers) for c in conflicts]
