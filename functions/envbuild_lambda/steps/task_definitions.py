"""Fargate task definitions with their awslogs log groups (the workshop's step 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.exceptions import ClientError

from envbuild_lambda.errors import aws_errors, error_code, map_client_error
from envbuild_lambda.pacing import RateLimiter, paced
from envbuild_lambda.parallel import pmap
from envbuild_lambda.spec import TAG_BUILD, TAG_ENVIRONMENT, is_managed, managed_tags
from envbuild_lambda.state import TaskDefinitionRef
from envbuild_lambda.steps import desired as desired_steps
from envbuild_lambda.steps import diff, retag
from envbuild_lambda.steps.diff import Change
from envbuild_lambda.steps.record import removed_overrides

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from envbuild_lambda.aws import Caller, Clients
    from envbuild_lambda.spec import EnvironmentSpec, Service
    from envbuild_lambda.steps.record import EnvironmentRecord


#: ``ensure_log_group``'s retention when the caller does not say: the group's is left as it is.
KEEP: Literal["keep"] = "keep"


def describe_log_group(clients: Clients, name: str) -> dict[str, Any] | None:
    with aws_errors(f"DescribeLogGroups {name}"):
        found = clients.logs.describe_log_groups(logGroupNamePrefix=name, limit=1)["logGroups"]
    return dict(found[0]) if found and found[0]["logGroupName"] == name else None


def ensure_log_group(
    clients: Clients,
    name: str,
    tags: dict[str, str],
    retention_days: int | Literal["keep"] | None = KEEP,
    *,
    converge: bool = True,
) -> bool:
    """Create the log group; an existing one is used as it is. True if created.

    Looked up first, so that a re-run makes no mutating call; "already exists" is still handled
    (a concurrent or retried creation). ``retention_days`` (the spec's logRetentionDays, None:
    never expire) is applied to a group envbuild creates, and with ``converge`` converged for a
    group envbuild manages (tagged for the environment); an adopted group keeps its own
    retention. The build converges existing groups in Create Services (``converge_log_groups``,
    which records what a rollback restores), so Register Task Definitions passes False."""
    group = describe_log_group(clients, name)
    if group is not None:
        if retention_days != KEEP and converge:
            converge_log_group(clients, group, tags, retention_days)
        return False
    try:
        clients.logs.create_log_group(logGroupName=name, tags=tags)
    except ClientError as error:
        if error_code(error) == "ResourceAlreadyExistsException":
            # created meanwhile: converged as any existing one
            ensure_log_group(clients, name, tags, retention_days, converge=converge)
            return False
        raise map_client_error(error, f"CreateLogGroup {name}") from error
    if retention_days not in (KEEP, None):
        set_retention(clients, name, retention_days)
    return True


def set_retention(clients: Clients, name: str, retention_days: int | None) -> None:
    """PutRetentionPolicy, or DeleteRetentionPolicy for None (never expire)."""
    if retention_days is None:
        with aws_errors(f"DeleteRetentionPolicy {name}"):
            clients.logs.delete_retention_policy(logGroupName=name)
    else:
        with aws_errors(f"PutRetentionPolicy {name}"):
            clients.logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)


def log_group_arn(group: Mapping[str, Any]) -> str:
    """A described log group's ARN for the tagging APIs (without DescribeLogGroups' ":*")."""
    return str(group.get("logGroupArn") or group.get("arn", "")).removesuffix(":*")


def log_group_tags(clients: Clients, group: Mapping[str, Any]) -> dict[str, str]:
    with aws_errors(f"ListTagsForResource {group['logGroupName']}"):
        return dict(
            clients.logs.list_tags_for_resource(resourceArn=log_group_arn(group)).get("tags", {})
        )


@overload
def converge_log_group(
    clients: Clients,
    group: Mapping[str, Any],
    tags: dict[str, str],
    retention_days: int | None,
    *,
    with_tags: Literal[False] = False,
) -> Change: ...


@overload
def converge_log_group(
    clients: Clients,
    group: Mapping[str, Any],
    tags: dict[str, str],
    retention_days: int | None,
    *,
    with_tags: Literal[True],
) -> tuple[Change, dict[str, str]]: ...


def converge_log_group(
    clients: Clients,
    group: Mapping[str, Any],
    tags: dict[str, str],
    retention_days: int | None,
    *,
    with_tags: bool = False,
) -> Change | tuple[Change, dict[str, str]]:
    """diff.log_group_change of an existing group, applied if envbuild manages it (tagged for
    the environment): its retention and the spec's tags (an adopted group is left as it is).
    ``with_tags``: also the group's tags as they were read."""
    name = str(group["logGroupName"])
    have = log_group_tags(clients, group)
    managed = is_managed(have, tags.get(TAG_ENVIRONMENT, ""))
    change = diff.log_group_change(name, retention_days, group, managed=managed, tags=(tags, have))
    if change.action != "update":
        return (change, have) if with_tags else change
    if "logRetentionDays" in change.fields:
        set_retention(clients, name, retention_days)
    arn = log_group_arn(group)

    def tag(add: dict[str, str]) -> None:
        with aws_errors(f"TagResource {name}"):
            clients.logs.tag_resource(resourceArn=arn, tags=add)

    def untag(remove: list[str]) -> None:
        with aws_errors(f"UntagResource {name}"):
            clients.logs.untag_resource(resourceArn=arn, tagKeys=remove)

    diff.apply_tags(change, tag, untag)
    return (change, have) if with_tags else change


def converge_log_groups(
    clients: Clients,
    spec: EnvironmentSpec,
    build: str | None,
    max_workers: int,
) -> tuple[list[Change], dict[str, int | None]]:
    """Create Services' pass over the services' log groups (Register Task Definitions created
    the missing ones): each one's row of the one diff, applied (``converge_log_group``: its
    retention and the spec's tags, only if envbuild manages it). A group this build created
    (its envbuild:build tag) is a ``create`` row. Returns the rows and, per group whose
    retention changed, the retention it had (None: never expire): a rollback restores it."""

    def one(service: Service) -> tuple[Change | None, int | None]:
        name = service.log_group(spec.environment)
        group = describe_log_group(clients, name)
        if group is None:
            return None, None
        tags = desired_steps.tags(spec, service, build)
        retention = desired_steps.log_retention(spec, service)
        before = group.get("retentionInDays")
        row, have = converge_log_group(clients, group, tags, retention, with_tags=True)
        if build is not None and have.get(TAG_BUILD) == build:
            return Change(kind="logGroup", name=name, action="create"), None
        return row, before

    rows: list[Change] = []
    previous: dict[str, int | None] = {}
    for row, before in pmap(one, spec.services, max_workers):
        if row is None:
            continue
        rows.append(row)
        if row.action == "update" and "logRetentionDays" in row.fields:
            previous[row.name] = before
    return rows, previous


def latest_revision(clients: Clients, family: str) -> dict[str, Any] | None:
    """The family's latest ACTIVE revision (DescribeTaskDefinition of a family name), or None."""
    try:
        response = clients.ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    except ClientError as error:
        if error_code(error) in ("ClientException", "InvalidParameterException"):  # no such family
            return None
        raise map_client_error(error, f"DescribeTaskDefinition {family}") from error
    current = response["taskDefinition"]
    if current.get("status") != "ACTIVE":
        return None
    return {**current, "tags": list(response.get("tags", []))}


def converge_revision_tags(
    clients: Clients, spec: EnvironmentSpec, service: Service, revision: str, build: str | None
) -> Change | None:
    """The spec's tags on the revision ``service`` runs (diff.revision_tags_change), applied
    with ECS TagResource / UntagResource on its ARN: a tag edit retags the revision in use
    instead of registering a new one. None for a revision this build registered (it got the
    spec's tags at registration)."""
    with aws_errors(f"DescribeTaskDefinition {revision}"):
        response = clients.ecs.describe_task_definition(taskDefinition=revision, include=["TAGS"])
    have = {t.get("key", ""): t.get("value", "") for t in response.get("tags", [])}
    if build is not None and have.get(TAG_BUILD) == build:
        return None
    change = diff.revision_tags_change(revision, desired_steps.tags(spec, service), have)
    if change.action != "update":
        return change
    retag.ecs(clients, str(response["taskDefinition"]["taskDefinitionArn"]), change, revision)
    return change


def register(
    clients: Clients,
    caller: Caller,
    environment: str,
    service: Service,
    execution_role_arn: str,
    task_role_arn: str,
    build: str | None = None,
    pace: RateLimiter | None = None,
    *,
    log_retention_days: int | Literal["keep"] | None = KEEP,
    spec_tags: dict[str, str] | None = None,
    removed_overrides: Mapping[str, Iterable[str]] | None = None,
) -> TaskDefinitionRef:
    """Register the service's task definition, unless its latest revision already is the desired
    one (a retry after a lost response, or a re-run): no duplicate revisions. A spec change
    (image, environment, cpu/memory, roles, port) registers a new revision, which CreateServices
    then rolls the ECS service to.

    ``log_retention_days`` and ``spec_tags`` (``desired.log_retention`` and the spec's tags of
    the service, ``desired.tags``) apply issue 17's logRetentionDays and tags;
    ``removed_overrides`` (record.removed_overrides) the override keys the spec dropped."""
    tags = {**(spec_tags or {}), **managed_tags(environment, build)}
    family = service.family(environment)
    log_group = service.log_group(environment)
    ensure_log_group(clients, log_group, tags, log_retention_days, converge=False)
    desired = desired_steps.task_definition(
        caller, environment, service, execution_role_arn, task_role_arn, removed_overrides
    )
    change = diff.task_definition_change(
        service, environment, desired, latest_revision(clients, family)
    )
    if change.action == "unchanged":
        return TaskDefinitionRef(name=service.name, taskDefinition=change.name, logGroup=log_group)

    def register_revision() -> dict[str, Any]:
        with aws_errors(f"RegisterTaskDefinition {family}"):
            return dict(
                clients.ecs_once.register_task_definition(
                    **desired_steps.sent(desired),
                    tags=[{"key": key, "value": value} for key, value in tags.items()],
                )["taskDefinition"]
            )

    registered = paced(pace, register_revision)
    return TaskDefinitionRef(
        name=service.name,
        taskDefinition=f"{registered['family']}:{registered['revision']}",
        logGroup=log_group,
    )


def register_all(
    clients: Clients,
    caller: Caller,
    environment: str,
    services: Sequence[Service],
    execution_role_arn: str,
    task_role_arn: str,
    build: str | None,
    max_workers: int,
    writes_per_second: int = 1,
    *,
    spec_tags: dict[str, str] | None = None,
    log_retention_days: int | Literal["keep"] | None = KEEP,
    recorded: EnvironmentRecord | None = None,
) -> list[TaskDefinitionRef]:
    """``register`` for a batch of services, in spec order. RegisterTaskDefinition is paced at
    ``writes_per_second`` (the ECS task-definition-modification quota, account-wide); the log
    group and revision look-ups run ``max_workers`` at a time."""
    pace = RateLimiter(writes_per_second, burst=writes_per_second)

    def one(service: Service) -> TaskDefinitionRef:
        """The service's own tags and logRetentionDays over the spec's (``spec_tags`` and
        ``log_retention_days``: the top-level values; KEEP leaves the retention alone)."""
        retention = (
            KEEP
            if log_retention_days == KEEP
            else service.effective_log_retention(log_retention_days)
        )
        return register(
            clients, caller, environment, service, execution_role_arn, task_role_arn, build,
            pace, log_retention_days=retention, spec_tags=service.effective_tags(spec_tags or {}),
            removed_overrides=removed_overrides(recorded, service),
        )  # fmt: skip

    return pmap(one, services, max_workers)
