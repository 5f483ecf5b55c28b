"""Preflight: check, before anything is created or changed, that the build can succeed.

Every problem is collected (not just the first) and reported with the resource and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from envbuild_lambda.errors import (
    PreflightFailed,
    ResourceNotFound,
    aws_errors,
    error_code,
    map_client_error,
)
from envbuild_lambda.observability import logger
from envbuild_lambda.steps import ownership
from envbuild_lambda.steps.services import describe_services

if TYPE_CHECKING:
    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.spec import EnvironmentSpec

ECS_TASKS = "ecs-tasks.amazonaws.com"


def check_vpc(clients: Clients, vpc_id: str) -> list[str]:
    try:
        clients.ec2.describe_vpcs(VpcIds=[vpc_id])
    except ClientError as error:
        if error_code(error) == "InvalidVpcID.NotFound":
            return [f"VPC {vpc_id} does not exist in this account and region: fix namespace.vpcId"]
        raise map_client_error(error, f"DescribeVpcs {vpc_id}") from error
    problems = []
    for attribute, key, label, flag in (
        ("enableDnsSupport", "EnableDnsSupport", "DNS resolution", "--enable-dns-support"),
        ("enableDnsHostnames", "EnableDnsHostnames", "DNS hostnames", "--enable-dns-hostnames"),
    ):
        with aws_errors(f"DescribeVpcAttribute {vpc_id} {attribute}"):
            answer: Any = clients.ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)  # type: ignore[arg-type]
        if not answer.get(key, {}).get("Value", False):
            problems.append(
                f"VPC {vpc_id} has {label} disabled, so Cloud Map names will not resolve: enable it"
                f" (aws ec2 modify-vpc-attribute --vpc-id {vpc_id} {flag} '{{\"Value\":true}}')"
            )
    return problems


def check_subnets(clients: Clients, vpc_id: str, subnet_ids: list[str]) -> list[str]:
    found: dict[str, str] = {}
    for subnet_id in subnet_ids:  # one at a time: a missing id fails the whole call
        try:
            subnets = clients.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
        except ClientError as error:
            if error_code(error) == "InvalidSubnetID.NotFound":
                continue
            raise map_client_error(error, f"DescribeSubnets {subnet_id}") from error
        found.update({s["SubnetId"]: s["VpcId"] for s in subnets})
    problems = []
    for subnet_id in subnet_ids:
        if subnet_id not in found:
            problems.append(f"subnet {subnet_id} does not exist: fix network.subnets")
        elif found[subnet_id] != vpc_id:
            problems.append(
                f"subnet {subnet_id} is in {found[subnet_id]}, not in the namespace's VPC {vpc_id}:"
                " use subnets of that VPC"
            )
    return problems


def check_security_groups(clients: Clients, vpc_id: str, group_ids: list[str]) -> list[str]:
    problems = []
    for group_id in group_ids:
        try:
            groups = clients.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        except ClientError as error:
            if error_code(error) in ("InvalidGroup.NotFound", "InvalidGroupId.Malformed"):
                problems.append(
                    f"security group {group_id} does not exist: fix network.securityGroups"
                )
                continue
            raise map_client_error(error, f"DescribeSecurityGroups {group_id}") from error
        for group in groups:
            if group.get("VpcId") != vpc_id:
                problems.append(
                    f"security group {group_id} is in {group.get('VpcId')}, not in {vpc_id}:"
                    " use a security group of the namespace's VPC"
                )
    return problems


def check_cluster(clients: Clients, cluster: str) -> list[str]:
    with aws_errors(f"DescribeClusters {cluster}"):
        answer = clients.ecs.describe_clusters(clusters=[cluster])
    active = [c for c in answer.get("clusters", []) if c.get("status") == "ACTIVE"]
    if active:
        return []
    status = next((c.get("status") for c in answer.get("clusters", [])), None)
    if status:
        return [f"ECS cluster {cluster} is {status}, not ACTIVE: use an active cluster"]
    return [f"ECS cluster {cluster} does not exist: create it or fix cluster"]


def check_capacity_providers(clients: Clients, spec: EnvironmentSpec) -> list[str]:
    """The capacity providers the services' strategies name are associated with the cluster
    (CreateService refuses any other)."""
    used = {
        item.capacityProvider: service.name
        for service in spec.services
        for item in service.capacityProviders or []
    }
    if not used:
        return []
    with aws_errors(f"DescribeClusters {spec.cluster}"):
        clusters = clients.ecs.describe_clusters(clusters=[spec.cluster])["clusters"]
    have = set(clusters[0].get("capacityProviders", [])) if clusters else set()
    return [
        f"ECS cluster {spec.cluster_name} has no capacity provider {provider} (used by"
        f" services[].capacityProviders of {name}): associate it with the cluster (aws ecs"
        f" put-cluster-capacity-providers --cluster {spec.cluster_name} --capacity-providers"
        f" {' '.join(sorted(have | {provider}))} --default-capacity-provider-strategy ...)"
        for provider, name in sorted(used.items())
        if provider not in have
    ]


def _secret_id(arn: str) -> str:
    """A Secrets Manager secret's ARN without its :json-key:version-stage:version-id suffix."""
    return ":".join(arn.split(":")[:7])


def _parameter_name(arn: str) -> str:
    """An SSM parameter's name from its ARN (parameter/a/b is /a/b; parameter/a is a)."""
    path = arn.split(":", 5)[5].removeprefix("parameter")
    return path if path.count("/") > 1 else path.lstrip("/")


@dataclass(frozen=True)
class SecretRead:
    """A secret the spec names, as the task execution role must read it."""

    shown: str  # "secret <ARN>" or "SSM parameter <name>"
    field: str  # <service>.secrets.<ENV> or <service>.sidecars.<name>.secrets.<ENV>
    action: str  # the action ECS calls with the execution role
    resource: str  # the ARN IAM evaluates it on


#: What ECS calls with the task execution role to inject a secret: Secrets Manager's
#: GetSecretValue on the secret's ARN (its full ARN, without the :json-key:... suffix ECS
#: reads itself), Parameter Store's GetParameters on the parameter's ARN ("Required IAM
#: permissions for Amazon ECS secrets",
#: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html).
#: kms:Decrypt (a customer managed key) is not simulated: docs/real-services.md says why.
SECRET_READ_ACTIONS = {
    "secretsmanager": "secretsmanager:GetSecretValue",
    "ssm": "ssm:GetParameters",
}
#: What ECS Exec needs the task role to allow (the Amazon ECS Developer Guide's "ECS Exec
#: permissions" of the task IAM role,
#: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html); the
#: ssmmessages actions take no resource type (Resource "*").
EXEC_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
#: Resource ARNs per SimulatePrincipalPolicy request. The API documents no count limit on
#: ResourceArns, only each ARN's length (1..2048) and pages of results (MaxItems 1..1000,
#: IsTruncated/Marker): 50 per request keeps a request small and its answer (one result per
#: action x resource) within one page; further pages are followed all the same.
SIMULATION_BATCH = 50
SIMULATION_PAGE = 1000


def check_secrets(
    clients: Clients, spec: EnvironmentSpec, caller: Caller
) -> tuple[list[str], list[SecretRead]]:
    """Each secret the spec names (services' and sidecars' ``secrets``) exists: DescribeSecret
    or DescribeParameters, which return no value. Secrets of another account or region cannot
    be looked up from here and are left to ECS (the task fails to start, naming it). Returns the
    problems, and the secrets found (what the execution role must be allowed to read)."""
    wanted: dict[str, tuple[str, str]] = {}
    for service in spec.services:
        for env, arn in service.secrets.items():
            wanted.setdefault(arn, (f"{service.name}.secrets.{env}", service.name))
        for sidecar in service.sidecars:
            for env, arn in sidecar.secrets.items():
                wanted.setdefault(
                    arn, (f"{service.name}.sidecars.{sidecar.name}.secrets.{env}", service.name)
                )
    problems: list[str] = []
    found: list[SecretRead] = []
    for arn, (field, _service) in sorted(wanted.items()):
        parts = arn.split(":")
        if parts[3] != caller.region or parts[4] != caller.account_id:
            continue
        if parts[2] == "secretsmanager":
            try:
                secret = clients.secretsmanager.describe_secret(SecretId=_secret_id(arn))
            except ClientError as error:
                if error_code(error) != "ResourceNotFoundException":
                    raise map_client_error(error, f"DescribeSecret {_secret_id(arn)}") from error
                problems.append(
                    f"secret {_secret_id(arn)} ({field}) does not exist in Secrets Manager:"
                    " create it or fix the ARN"
                )
                continue
            full = str(secret.get("ARN") or _secret_id(arn))  # a partial ARN's full one
            found.append(
                SecretRead(f"secret {_secret_id(arn)}", field, SECRET_READ_ACTIONS[parts[2]], full)
            )
        else:
            name = _parameter_name(arn)
            with aws_errors(f"DescribeParameters {name}"):
                parameters = clients.ssm.describe_parameters(
                    ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
                )["Parameters"]
            if not parameters:
                problems.append(
                    f"SSM parameter {name} ({field}) does not exist: create it or fix the ARN"
                )
                continue
            found.append(
                SecretRead(f"SSM parameter {name}", field, SECRET_READ_ACTIONS["ssm"], arn)
            )
    return problems, found


def simulate(
    clients: Clients, role_arn: str, actions: Sequence[str], resources: Sequence[str]
) -> dict[tuple[str, str], str]:
    """(action, resource) -> EvalDecision (allowed, implicitDeny, explicitDeny) of the role's
    own policies (iam:SimulatePrincipalPolicy), ``SIMULATION_BATCH`` resources per request."""
    decisions: dict[tuple[str, str], str] = {}
    unique = list(dict.fromkeys(resources))
    paginator = clients.iam.get_paginator("simulate_principal_policy")
    for start in range(0, len(unique), SIMULATION_BATCH):
        batch = unique[start : start + SIMULATION_BATCH]
        with aws_errors(f"SimulatePrincipalPolicy {role_arn}"):
            pages = paginator.paginate(
                PolicySourceArn=role_arn,
                ActionNames=list(actions),
                ResourceArns=batch,
                PaginationConfig={"PageSize": SIMULATION_PAGE},
            )
            for page in pages:
                for result in page["EvaluationResults"]:
                    key = (result["EvalActionName"], result.get("EvalResourceName", "*"))
                    decisions[key] = result["EvalDecision"]
    return decisions


def _denied(decision: str) -> str:
    if decision == "explicitDeny":
        return "an explicit Deny in its policies refuses it"
    return "none of its policies allows it"


def check_secret_access(clients: Clients, role_arn: str, reads: Sequence[SecretRead]) -> list[str]:
    """The task execution role may read each secret the spec names (ECS reads them with it when
    a task starts: a denied one fails every task with ResourceInitializationError)."""
    problems = []
    for action in sorted({read.action for read in reads}):
        mine = [read for read in reads if read.action == action]
        decisions = simulate(clients, role_arn, [action], [read.resource for read in mine])
        for read in mine:
            decision = decisions.get((action, read.resource), "implicitDeny")
            if decision != "allowed":
                problems.append(
                    f"the task execution role {role_arn} may not read {read.shown} ({read.field}):"
                    f" {action} on {read.resource} is {decision} ({_denied(decision)}): allow it"
                    " in that role's policies or fix executionRoleArn"
                )
    return problems


def check_exec_permissions(clients: Clients, spec: EnvironmentSpec) -> list[str]:
    """Warnings (the build goes on): a service with enableExecuteCommand whose task role may not
    open ECS Exec's channels (``aws ecs execute-command`` would fail; the service runs)."""
    services = [s.name for s in spec.services if s.enableExecuteCommand]
    role_arn = spec.taskRoleArn
    if not services or not role_arn:
        return []
    decisions = simulate(clients, role_arn, EXEC_ACTIONS, ["*"])
    denied = [a for a in EXEC_ACTIONS if decisions.get((a, "*"), "implicitDeny") != "allowed"]
    if not denied:
        return []
    return [
        f"service {name} sets enableExecuteCommand but its task role {role_arn} (taskRoleArn) may"
        f" not call {', '.join(denied)}: ECS Exec (aws ecs execute-command) will fail until the"
        " role allows them; the service itself runs"
        for name in services
    ]


def _trust_policy(document: object) -> dict[str, Any]:
    if isinstance(document, str):  # IAM returns it URL-encoded where the SDK does not decode it
        return dict(json.loads(unquote(document)))
    return dict(document) if isinstance(document, dict) else {}


def trusts_ecs_tasks(document: object) -> bool:
    for statement in _trust_policy(document).get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        services = statement.get("Principal", {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        if ECS_TASKS in services and any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            return True
    return False


def check_role(clients: Clients, field: str, role_arn: str) -> list[str]:
    name = role_arn.rsplit("/", 1)[-1]
    try:
        role = clients.iam.get_role(RoleName=name)["Role"]
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return [f"IAM role {role_arn} does not exist: create it or fix {field}"]
        raise map_client_error(error, f"GetRole {name}") from error
    if role["Arn"] != role_arn:
        return [f"IAM role {name} is {role['Arn']}, not {role_arn}: fix {field}"]
    if not trusts_ecs_tasks(role.get("AssumeRolePolicyDocument")):
        return [
            f"IAM role {role_arn} does not trust {ECS_TASKS}: add it to the role's trust policy ({field})"
        ]
    return []


def cloud_map_zones(clients: Clients, name: str) -> set[str]:
    """Hosted zone ids of the private DNS namespaces of this name (those are adoptable)."""
    zones = set()
    with aws_errors("ListNamespaces"):
        pages = clients.servicediscovery.get_paginator("list_namespaces").paginate(
            Filters=[{"Name": "TYPE", "Values": ["DNS_PRIVATE"], "Condition": "EQ"}]
        )
        ids = [ns["Id"] for page in pages for ns in page["Namespaces"] if ns.get("Name") == name]
    for namespace_id in ids:
        try:
            with aws_errors(f"GetNamespace {namespace_id}"):
                namespace = clients.servicediscovery.get_namespace(Id=namespace_id)["Namespace"]
        except ResourceNotFound:  # listed, but deleted meanwhile
            continue
        zone = namespace.get("Properties", {}).get("DnsProperties", {}).get("HostedZoneId")
        if zone:
            zones.add(zone)
    return zones


def check_domain(clients: Clients, name: str, vpc_id: str) -> list[str]:
    """A private hosted zone of this name on the VPC that is not a Cloud Map namespace's collides
    (CreatePrivateDnsNamespace would end in FAIL after a minute: ConflictingDomainExists)."""
    with aws_errors(f"ListHostedZonesByName {name}"):
        zones = clients.route53.list_hosted_zones_by_name(DNSName=name, MaxItems="100")[
            "HostedZones"
        ]
    candidates = [
        z for z in zones if z["Name"].rstrip(".") == name and z.get("Config", {}).get("PrivateZone")
    ]
    if not candidates:
        return []
    namespaces = cloud_map_zones(clients, name)
    problems = []
    for zone in candidates:
        zone_id = zone["Id"].rsplit("/", 1)[-1]
        if zone_id in namespaces:
            continue
        with aws_errors(f"GetHostedZone {zone_id}"):
            vpcs = {
                v.get("VPCId") for v in clients.route53.get_hosted_zone(Id=zone_id).get("VPCs", [])
            }
        if vpc_id in vpcs:
            problems.append(
                f"private hosted zone {name} ({zone_id}) is already associated with {vpc_id} and is not a"
                " Cloud Map namespace (ConflictingDomainExists): choose another namespace.name or"
                " disassociate that zone from the VPC"
            )
    return problems


#: ECS's default maximumPercent of a replica service's rolling deployments (envbuild sets none):
#: "the default value for maximumPercent is 200%" (DeploymentConfiguration, Amazon ECS API
#: Reference, https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html)
DEFAULT_MAXIMUM_PERCENT = 200


def free_addresses(clients: Clients, subnet_ids: list[str]) -> dict[str, int]:
    """Subnet id -> its AvailableIpAddressCount (DescribeSubnets)."""
    with aws_errors(f"DescribeSubnets {' '.join(subnet_ids)}"):
        subnets = clients.ec2.describe_subnets(SubnetIds=list(dict.fromkeys(subnet_ids)))["Subnets"]
    return {s["SubnetId"]: int(s.get("AvailableIpAddressCount", 0)) for s in subnets}


def check_free_addresses(
    clients: Clients, spec: EnvironmentSpec, existing: dict[str, Any]
) -> list[str]:
    """Every Fargate task takes one address of the spec's subnets for its network interface; a
    rolling deployment runs up to maximumPercent of desiredCount at once. Needed: for each
    service, desiredCount x maximumPercent (rounded up) less the addresses its running and
    pending tasks already hold, plus one for the DNS probe. A shortfall would leave tasks
    unplaced (a service event) until the services' readiness check times out."""
    free = free_addresses(clients, spec.network.subnets)
    needed = 0
    surge = 0
    for service in spec.services:
        current = existing.get(service.ecs_service_name) or {}
        held = 0
        maximum = DEFAULT_MAXIMUM_PERCENT
        if current.get("status") == "ACTIVE":
            held = int(current.get("runningCount", 0)) + int(current.get("pendingCount", 0))
            maximum = int(current.get("deploymentConfiguration", {}).get("maximumPercent", maximum))
        peak = -(-service.desiredCount * maximum // 100)
        needed += max(0, peak - held)
        surge += peak - service.desiredCount
    probe = 1 if spec.verify.probe else 0
    needed += probe
    total = sum(free.values())
    if total >= needed:
        return []
    counts = ", ".join(f"{subnet}: {free.get(subnet, 0)}" for subnet in spec.network.subnets)
    desired = sum(service.desiredCount for service in spec.services)
    return [
        f"the subnets have {total} free IPv4 address(es) in all ({counts}) but the build may need"
        f" {needed} ({desired} task(s) at desiredCount, up to {surge} more while deployments roll"
        f" (maximumPercent){', 1 for the DNS probe' if probe else ''}, less the"
        " addresses the services' running tasks hold): use larger subnets or more subnets in"
        " network.subnets, or free addresses in them"
    ]


def check_draining(spec: EnvironmentSpec, existing: dict[str, Any]) -> list[str]:
    return [
        f"ECS service {name} in cluster {spec.cluster_name} is DRAINING after a delete (a new one would"
        " fail: 'Creation of service was not idempotent'): wait until it is INACTIVE"
        for name, service in existing.items()
        if service.get("status") == "DRAINING"
    ]


def preflight(
    clients: Clients,
    spec: EnvironmentSpec,
    *,
    conflicts: bool = True,
    max_workers: int = 4,
    caller: Caller | None = None,
    recorded_instances: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Raise PreflightFailed listing every problem; return what was checked. ``conflicts``: also
    every existing resource of a derived name envbuild does not own (steps/ownership.py); the
    plan shows those as rows instead."""
    vpc_id = spec.namespace.vpcId
    problems = check_vpc(clients, vpc_id)
    vpc_exists = not any("does not exist" in p for p in problems)
    # Subnets and security groups are checked even when the VPC is missing: every missing
    # resource is reported at once, not one run at a time (whether they are in the VPC is asked
    # only of a VPC that exists).
    subnet_problems = check_subnets(clients, vpc_id, spec.network.subnets)
    group_problems = check_security_groups(clients, vpc_id, spec.network.securityGroups)
    if not vpc_exists:
        subnet_problems = [p for p in subnet_problems if "does not exist" in p]
        group_problems = [p for p in group_problems if "does not exist" in p]
    problems += subnet_problems + group_problems
    if vpc_exists:
        problems += check_domain(clients, spec.namespace.name, vpc_id)
    cluster_problems = check_cluster(clients, spec.cluster)
    problems += cluster_problems
    if not cluster_problems:
        problems += check_capacity_providers(clients, spec)
    secret_reads: list[SecretRead] = []
    if caller is not None:
        secret_problems, secret_reads = check_secrets(clients, spec, caller)
        problems += secret_problems
    existing: dict[str, Any] = {}
    if not cluster_problems:
        existing = dict(
            describe_services(clients, spec.cluster, (s.ecs_service_name for s in spec.services))
        )
        problems += check_draining(spec, existing)
    if vpc_exists and not subnet_problems:
        problems += check_free_addresses(clients, spec, existing)
    if conflicts:
        found = ownership.find_conflicts(
            clients,
            spec,
            max_workers,
            cluster_exists=not cluster_problems,
            recorded_instances=recorded_instances,
        )
        problems += [conflict.problem() for conflict in found]
    roles = {"executionRoleArn": spec.executionRoleArn, "taskRoleArn": spec.taskRoleArn}
    role_problems: dict[str, list[str]] = {}
    for field, arn in roles.items():  # both filled by ValidateSpec
        if arn and (field == "executionRoleArn" or arn != spec.executionRoleArn):
            role_problems[field] = check_role(clients, field, arn)
            problems += role_problems[field]
    # What the roles may do, asked only of roles that exist (the simulation names a role).
    if secret_reads and spec.executionRoleArn and not role_problems.get("executionRoleArn"):
        problems += check_secret_access(clients, spec.executionRoleArn, secret_reads)
    warnings: list[str] = []
    task_role_problems = role_problems.get(
        "taskRoleArn" if spec.taskRoleArn != spec.executionRoleArn else "executionRoleArn",
        [],
    )
    if not task_role_problems:
        warnings = check_exec_permissions(clients, spec)
    if problems:
        raise PreflightFailed(
            f"{len(problems)} problem(s) found before building: " + "; ".join(problems)
        )
    for warning in warnings:
        logger.warning("Preflight warning", extra={"warning": warning})
    return {"vpc": vpc_id, "cluster": spec.cluster_name, "checked": True, "warnings": warnings}
