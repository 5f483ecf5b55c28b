"""The in-VPC DNS probe (spec ``verify: {"probe": true}``): the workshop's ``dns-test`` task, but
one that really resolves every name through the VPC resolver and exits non-zero on a failure.

"Start DNS Probe" makes sure the probe's log group and task definition exist (envbuild-managed:
tagged, removed by teardown with the other ``/ecs/<environment>_*`` groups and
``<environment>_*`` revisions) and runs one Fargate task in the environment's subnets and
security groups; "Check DNS Probe" (a bounded poll) reads its exit code and its log, one line per
name: ``PROBE <name> OK <ip> <ip>…`` or ``PROBE <name> FAIL``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from envbuild_lambda.errors import ProbeFailed, aws_errors, error_code, map_client_error
from envbuild_lambda.spec import family_prefix
from envbuild_lambda.state import Poll, ProbeState

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients
    from envbuild_lambda.settings import PollSchedule
    from envbuild_lambda.spec import EnvironmentSpec

CONTAINER = "dns-probe"
#: Small, pulled from ECR Public (no Docker Hub rate limit); its nslookup asks the VPC resolver.
#: ECR VPC endpoints do not serve ECR Public: the subnets need NAT (or the task a public IP).
IMAGE = "public.ecr.aws/docker/library/busybox:stable"
NAMES_VARIABLE = "ENVBUILD_PROBE_NAMES"
#: Optional nslookup server argument ("host" or "host:port"); unset in the task: the VPC resolver
#: of /etc/resolv.conf. tests/unit/test_probe_script.py points it at its own DNS server.
RESOLVER_VARIABLE = "ENVBUILD_PROBE_RESOLVER"
#: One line per name; exit 1 if any name has no A answer. nslookup prints the server it asked
#: first (busybox: "Server: 10.0.0.2" then "Address: 10.0.0.2:53"; bind: "Address: 10.0.0.2#53"),
#: then each answer as "Name: <name>" and "Address: <ip>": only Address lines after a Name line
#: are answers (an NXDOMAIN or a timeout prints none).
SCRIPT = (
    'rc=0; for name in $ENVBUILD_PROBE_NAMES; do answers=$(nslookup -type=A "$name"'
    " $ENVBUILD_PROBE_RESOLVER 2>/dev/null"
    " | awk '/^Name:/ {named=1} named && /^Address/ {print $NF}' | sort | tr '\\n' ' ');"
    ' if [ -n "$answers" ]; then echo "PROBE $name OK $answers"; else echo "PROBE $name FAIL";'
    " rc=1; fi; done; exit $rc"
)


def family(spec: EnvironmentSpec) -> str:
    # "__": no service's family ("<environment>_<service>", a DNS label) can be this one.
    return f"{family_prefix(spec.environment)}_dns-probe"


def log_group(spec: EnvironmentSpec) -> str:
    return f"/ecs/{family(spec)}"


def _ensure_log_group(clients: Clients, spec: EnvironmentSpec, build: str | None) -> None:
    name = log_group(spec)
    with aws_errors(f"DescribeLogGroups {name}"):
        groups = clients.logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    if any(g["logGroupName"] == name for g in groups):
        return
    try:
        clients.logs.create_log_group(logGroupName=name, tags=spec.resource_tags(build))
    except ClientError as error:
        if error_code(error) != "ResourceAlreadyExistsException":
            raise map_client_error(error, f"CreateLogGroup {name}") from error


def _container(spec: EnvironmentSpec, region: str) -> dict[str, Any]:
    return {
        "name": CONTAINER,
        "image": IMAGE,
        "essential": True,
        "entryPoint": ["sh", "-c"],
        "command": [SCRIPT],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group(spec),
                "awslogs-region": region,
                "awslogs-stream-prefix": "ecs",
            },
        },
    }


def _task_definition(
    clients: Clients, spec: EnvironmentSpec, region: str, build: str | None
) -> str:
    """The latest ACTIVE revision if it is the probe as wanted, else a new one ("family:rev")."""
    container = _container(spec, region)
    try:
        current = clients.ecs.describe_task_definition(taskDefinition=family(spec))[
            "taskDefinition"
        ]
    except ClientError as error:
        if error_code(error) not in ("ClientException", "ClientError"):
            raise map_client_error(error, f"DescribeTaskDefinition {family(spec)}") from error
        current = None
    if current is not None and current.get("status") == "ACTIVE":
        existing = (current.get("containerDefinitions") or [{}])[0]
        if (
            existing.get("image") == IMAGE
            and existing.get("command") == container["command"]
            and current.get("executionRoleArn") == spec.executionRoleArn
        ):
            return f"{current['family']}:{current['revision']}"
    with aws_errors(f"RegisterTaskDefinition {family(spec)}"):
        registered = clients.ecs_once.register_task_definition(
            family=family(spec),
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            executionRoleArn=str(spec.executionRoleArn),
            containerDefinitions=[container],  # type: ignore[list-item]
            tags=[{"key": k, "value": v} for k, v in spec.resource_tags(build).items()],
        )["taskDefinition"]
    return f"{registered['family']}:{registered['revision']}"


def start_probe(
    clients: Clients,
    spec: EnvironmentSpec,
    region: str,
    schedule: PollSchedule,
    build: str | None = None,
) -> ProbeState:
    _ensure_log_group(clients, spec, build)
    task_definition = _task_definition(clients, spec, region, build)
    names = [service.dns_name(spec.namespace.name) for service in spec.services]
    with aws_errors(f"RunTask {task_definition} in cluster {spec.cluster_name}"):
        answer = clients.ecs.run_task(
            cluster=spec.cluster,
            taskDefinition=task_definition,
            launchType="FARGATE",
            count=1,
            startedBy="envbuild-dns-probe",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": spec.network.subnets,
                    "securityGroups": spec.network.securityGroups,
                    "assignPublicIp": spec.network.assignPublicIp,
                }
            },
            overrides={
                "containerOverrides": [
                    {
                        "name": CONTAINER,
                        "environment": [{"name": NAMES_VARIABLE, "value": " ".join(names)}],
                    }
                ]
            },
            tags=[{"key": k, "value": v} for k, v in spec.resource_tags(build).items()],
        )
    if not answer.get("tasks"):
        reasons = "; ".join(
            f"{f.get('arn', '')}: {f.get('reason', '')}" for f in answer.get("failures", [])
        )
        raise ProbeFailed(f"RunTask started no probe task: {reasons or 'no reason given'}")
    return ProbeState(
        requested=True,
        done=False,
        taskArn=answer["tasks"][0]["taskArn"],
        taskDefinition=task_definition,
        poll=Poll.start(schedule),
        message="probe task started",
    )


def parse_log(messages: list[str]) -> dict[str, list[str] | None]:
    """name -> its answers (None: the name did not resolve)."""
    answers: dict[str, list[str] | None] = {}
    for message in messages:
        parts = message.split()
        if len(parts) >= 3 and parts[0] == "PROBE":
            answers[parts[1]] = sorted(parts[3:]) if parts[2] == "OK" else None
    return answers


def _log_messages(clients: Clients, group: str, stream: str) -> list[str]:
    messages: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    for _ in range(100):  # bounded: the probe writes one line per name
        try:
            page = clients.logs.get_log_events(**kwargs)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return messages
            raise map_client_error(error, f"GetLogEvents {group}/{stream}") from error
        messages += [event["message"] for event in page["events"]]
        token = page.get("nextForwardToken")
        if not page["events"] or token == kwargs.get("nextToken"):
            return messages
        kwargs["nextToken"] = token
    return messages


def check_probe(
    clients: Clients, spec: EnvironmentSpec, state: ProbeState, schedule: PollSchedule
) -> ProbeState:
    """Done when the probe task STOPPED; raises ProbeFailed naming every name that did not
    resolve (and the likely cause)."""
    if state.poll is None or not state.taskArn:
        raise ProbeFailed("no probe task to check: Start DNS Probe did not run")
    poll = state.poll.next(schedule)
    with aws_errors(f"DescribeTasks {state.taskArn}"):
        tasks = clients.ecs.describe_tasks(cluster=spec.cluster, tasks=[str(state.taskArn)])[
            "tasks"
        ]
    task = tasks[0] if tasks else None
    if task is None or task.get("lastStatus") != "STOPPED":
        status = task.get("lastStatus") if task else "not found"
        return state.model_copy(
            update={
                "poll": poll,
                "message": f"probe task {state.taskArn} is {status} after {poll.attempt} checks"
                f" (about {schedule.budget_seconds()} s allowed)",
            }
        )
    container: dict[str, Any] = next(
        (dict(c) for c in task.get("containers", []) if c.get("name") == CONTAINER), {}
    )
    exit_code = container.get("exitCode")
    task_id = str(state.taskArn).rsplit("/", 1)[-1]
    answers = parse_log(_log_messages(clients, log_group(spec), f"ecs/{CONTAINER}/{task_id}"))
    names = [service.dns_name(spec.namespace.name) for service in spec.services]
    failed = [name for name in names if answers.get(name) is None]
    if exit_code != 0 or failed:
        reason = task.get("stoppedReason") or container.get("reason") or ""
        raise ProbeFailed(
            f"the in-VPC DNS probe (task {task_id}, exit code {exit_code}) could not resolve"
            f" {len(failed)} of {len(names)} name(s) through the VPC resolver:"
            f" {', '.join(failed) or '(none reported)'}"
            + (f"; stopped: {reason}" if reason else "")
            + " (check the VPC's enableDnsSupport and enableDnsHostnames attributes, that the"
            " namespace's hosted zone is associated with the VPC, and the probe's log group"
            f" {log_group(spec)})"
        )
    return state.model_copy(
        update={
            "done": True,
            "poll": poll,
            "exitCode": exit_code,
            "answers": {name: answers.get(name) or [] for name in names},
            "message": f"{len(names)} name(s) resolved inside the VPC",
        }
    )
