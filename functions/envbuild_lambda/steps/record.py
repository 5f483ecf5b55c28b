"""The environment record: what envbuild may manage for one environment (DynamoDB, one item).

As CloudFormation keeps a stack's resources and Terraform its state, the record is the first key
of ownership; the tags (envbuild:managed, envbuild:environment, envbuild:build) are the second.
Teardown, prune and rollback remove only what carries both.

The record is written *before* anything is created (Preflight, once the lock is held): the
place (cluster, namespace name, VPC) and the name of every registry, ECS service, task
definition family and log group the spec may create. A build that crashes half-way therefore
leaves a record that covers everything it could have made; a name recorded for something never
made (or made by someone else, without envbuild's tags) is harmless, since removal needs the
tags too. The teardown takes the place from the record, never from a spec that may hold a typo,
and forgets what it removed (and what no longer exists); the item goes once nothing is left.
Parameters need no entry: /envbuild/<environment>/ is the environment's own path.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from envbuild_lambda.errors import EnvironmentMoved, aws_errors, error_code, map_client_error
from envbuild_lambda.steps import probe

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service

#: The record's name sets (DynamoDB string sets), by the RemovalPlan/summary kind they hold;
#: "instances": the static instances envbuild registered, as "<service>/<instance id>" (the
#: only ones a build ever deregisters; they go with their registry).
SETS = ("registries", "ecsServices", "families", "logGroups", "instances")

#: The override keys envbuild has applied, "<service>/<part>/<key>" (part: taskDefinition,
#: container, service): a key the spec no longer has is rendered as removed (steps/desired.py
#: ``removed_overrides``). Not a resource: kept out of SETS (the item goes without it).
OVERRIDE_KEYS = "overrideKeys"
OVERRIDE_PARTS = ("taskDefinition", "container", "service")


def cluster_name(cluster: str) -> str:
    """A cluster given by name or ARN, by name (arn:…:cluster/NAME)."""
    return cluster.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class EnvironmentRecord:
    environment: str
    cluster: str | None = None
    namespace_name: str | None = None
    vpc_id: str | None = None
    names: Mapping[str, frozenset[str]] = field(default_factory=dict)
    last_execution: str | None = None
    override_keys: frozenset[str] = frozenset()

    def removed_overrides(self, service: Service) -> dict[str, frozenset[str]]:
        """Part -> the override keys a build applied to ``service`` that its spec no longer
        has (each rendered as removed: its ECS default, or absent)."""
        found: dict[str, set[str]] = {}
        for entry in self.override_keys:
            name, part, key = [*entry.split("/", 2), "", ""][:3]
            if (
                name == service.name
                and part in OVERRIDE_PARTS
                and key
                and key not in getattr(service.overrides, part)
            ):
                found.setdefault(part, set()).add(key)
        return {part: frozenset(keys) for part, keys in found.items()}

    def has(self, kind: str, name: str) -> bool:
        return name in self.names.get(kind, frozenset())

    def holds_resources(self) -> bool:
        return self.namespace_name is not None or any(self.names.get(k) for k in SETS)

    def holds_placed_resources(self) -> bool:
        """Resources bound to the place: ECS services (cluster), registries (namespace)."""
        return bool(
            self.namespace_name is not None
            or self.names.get("ecsServices")
            or self.names.get("registries")
        )

    def differences(self, spec: EnvironmentSpec) -> list[str]:
        """Where the spec names another place than the record (cluster, namespace, VPC)."""
        found: list[str] = []
        if self.cluster and cluster_name(self.cluster) != cluster_name(spec.cluster):
            found.append(f"cluster: the spec says {spec.cluster}, the record {self.cluster}")
        if self.namespace_name and self.namespace_name != spec.namespace.name:
            found.append(
                f"namespace.name: the spec says {spec.namespace.name},"
                f" the record {self.namespace_name}"
            )
        if self.vpc_id and self.vpc_id != spec.namespace.vpcId:
            found.append(
                f"namespace.vpcId: the spec says {spec.namespace.vpcId}, the record {self.vpc_id}"
            )
        return found


def _key(environment: str) -> dict[str, Any]:
    return {"environment": {"S": environment}}


def read(clients: Clients, table: str, environment: str) -> EnvironmentRecord | None:
    with aws_errors(f"GetItem {table} (record of {environment})"):
        item = clients.dynamodb.get_item(
            TableName=table, Key=_key(environment), ConsistentRead=True
        ).get("Item")
    if not item:
        return None

    def text(key: str) -> str | None:
        value = item.get(key, {}).get("S")
        return str(value) if value else None

    return EnvironmentRecord(
        environment=environment,
        cluster=text("cluster"),
        namespace_name=text("namespaceName"),
        vpc_id=text("vpcId"),
        names={kind: frozenset(item.get(kind, {}).get("SS", [])) for kind in SETS},
        last_execution=text("lastExecution"),
        override_keys=frozenset(item.get(OVERRIDE_KEYS, {}).get("SS", [])),
    )


def override_keys(spec: EnvironmentSpec) -> set[str]:
    """The spec's override keys as the record keeps them ("<service>/<part>/<key>")."""
    return {
        f"{service.name}/{part}/{key}"
        for service in spec.services
        for part in OVERRIDE_PARTS
        for key in getattr(service.overrides, part)
    }


def removed_overrides(
    recorded: EnvironmentRecord | None, service: Service
) -> dict[str, frozenset[str]]:
    """``EnvironmentRecord.removed_overrides``, nothing without a record."""
    return recorded.removed_overrides(service) if recorded is not None else {}


def spec_names(spec: EnvironmentSpec) -> dict[str, set[str]]:
    env = spec.environment
    names = {
        "registries": {s.name for s in spec.services},
        "ecsServices": {s.ecs_service_name for s in spec.services},
        "families": {s.family(env) for s in spec.services},
        "logGroups": {s.log_group(env) for s in spec.services},
    }
    if spec.verify.probe:  # the DNS probe's one-off task: its family and log group
        names["families"].add(probe.family(spec))
        names["logGroups"].add(probe.log_group(spec))
    instances = {f"{s.name}/{i.id}" for s in spec.services for i in s.instances}
    if instances:  # a DynamoDB set is never empty
        names["instances"] = instances
    return names


def check_place(clients: Clients, table: str, spec: EnvironmentSpec) -> EnvironmentRecord | None:
    """The record; EnvironmentMoved, changing nothing, when it still holds resources in another
    cluster, namespace or VPC than the spec's: a build there would mix two places under one
    environment (the plan shows these as ``replace`` rows: steps/diff.py place_changes)."""
    current = read(clients, table, spec.environment)
    _refuse_move(current, spec)
    return current


def _refuse_move(current: EnvironmentRecord | None, spec: EnvironmentSpec) -> None:
    if current is not None and current.holds_placed_resources():
        moved = current.differences(spec)
        if moved:
            raise EnvironmentMoved(
                f"environment {spec.environment} is recorded in another place: "
                + "; ".join(moved)
                + ". Tear it down first (envbuild teardown SPEC, which takes the place from the"
                " record) and build it again, or put the recorded values back in the spec"
            )


def claim(
    clients: Clients, table: str, spec: EnvironmentSpec, execution: str | None
) -> EnvironmentRecord:
    """Record the place and every name this build may create, before it creates anything
    (EnvironmentMoved first, as check_place)."""
    _refuse_move(read(clients, table, spec.environment), spec)
    names = spec_names(spec)
    values: dict[str, Any] = {
        ":cluster": {"S": spec.cluster},
        ":namespace": {"S": spec.namespace.name},
        ":vpc": {"S": spec.namespace.vpcId},
        ":execution": {"S": execution or "unknown"},
        ":now": {"N": str(int(time.time()))},
    }
    for kind, members in names.items():
        values[f":{kind}"] = {"SS": sorted(members)}
    overrides = override_keys(spec)
    if overrides:  # a DynamoDB set is never empty
        names = {**names, OVERRIDE_KEYS: overrides}
        values[f":{OVERRIDE_KEYS}"] = {"SS": sorted(overrides)}
    with aws_errors(f"UpdateItem {table} (record of {spec.environment})"):
        clients.dynamodb.update_item(
            TableName=table,
            Key=_key(spec.environment),
            UpdateExpression=(
                "SET #cluster = :cluster, namespaceName = :namespace, vpcId = :vpc,"
                " lastExecution = :execution, updatedAt = :now ADD "
                + ", ".join(f"#{kind} :{kind}" for kind in names)
            ),
            # Attribute names by placeholder: CLUSTER is one of DynamoDB's reserved words.
            ExpressionAttributeNames={"#cluster": "cluster", **{f"#{k}": k for k in names}},
            ExpressionAttributeValues=values,
        )
    claimed = read(clients, table, spec.environment)
    assert claimed is not None  # noqa: S101 - just written
    return claimed


def forget(
    clients: Clients,
    table: str,
    environment: str,
    names: Mapping[str, Iterable[str]],
    namespace: bool = False,
) -> bool:
    """Remove names of resources that no longer exist (and the namespace, if it is gone); delete
    the item once nothing is left. True if the item was deleted."""
    gone = {kind: set(members) for kind, members in names.items() if kind in SETS}
    if gone.get("registries"):  # a registry's static instances go with it
        current = read(clients, table, environment)
        instances = current.names.get("instances", frozenset()) if current else frozenset()
        gone["instances"] = gone.get("instances", set()) | {
            key for key in instances if key.split("/", 1)[0] in gone["registries"]
        }
    drop = {kind: sorted(members) for kind, members in gone.items() if members}
    clauses = [f"#{kind} :{kind}" for kind in drop]
    expression = ("DELETE " + ", ".join(clauses)) if clauses else ""
    if namespace:
        expression += " REMOVE namespaceName, vpcId"
    if expression:
        with aws_errors(f"UpdateItem {table} (record of {environment})"):
            try:
                if drop:
                    clients.dynamodb.update_item(
                        TableName=table,
                        Key=_key(environment),
                        UpdateExpression=expression.strip(),
                        ConditionExpression="attribute_exists(environment)",
                        ExpressionAttributeNames={f"#{k}": k for k in drop},
                        ExpressionAttributeValues={f":{k}": {"SS": v} for k, v in drop.items()},
                    )
                else:
                    clients.dynamodb.update_item(
                        TableName=table,
                        Key=_key(environment),
                        UpdateExpression=expression.strip(),
                        ConditionExpression="attribute_exists(environment)",
                    )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                return False  # no record: nothing to forget
    left = read(clients, table, environment)
    if left is None or left.holds_resources():
        return False
    try:
        clients.dynamodb.delete_item(
            TableName=table,
            Key=_key(environment),
            # Not if a build claimed it again meanwhile (it runs under the lock, but be exact).
            ConditionExpression="attribute_not_exists(namespaceName) AND "
            + " AND ".join(f"attribute_not_exists(#{kind})" for kind in SETS),
            ExpressionAttributeNames={f"#{kind}": kind for kind in SETS},
        )
    except ClientError as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False
        raise map_client_error(error, f"DeleteItem {table} (record of {environment})") from error
    return True
