"""Shapes of the data the state machine passes between steps (kept small: N services x bytes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from envbuild_lambda.settings import PollSchedule


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Poll(_State):
    """Where a bounded poll stands: the ASL's Choice compares attempt with maxAttempts."""

    attempt: int = 0
    waitSeconds: int
    maxAttempts: int

    @classmethod
    def start(cls, schedule: PollSchedule, first_wait: int | None = None) -> Poll:
        """The poll before its first check; ``first_wait`` overrides the schedule's first wait."""
        wait = schedule.wait_before(0) if first_wait is None else first_wait
        return cls(attempt=0, waitSeconds=wait, maxAttempts=schedule.max_attempts)

    def next(self, schedule: PollSchedule) -> Poll:
        attempt = self.attempt + 1
        return Poll(
            attempt=attempt, waitSeconds=schedule.wait_before(attempt), maxAttempts=self.maxAttempts
        )


class NamespaceState(_State):
    name: str
    vpcId: str
    id: str | None = None
    arn: str | None = None
    hostedZoneId: str | None = None
    operationId: str | None = None
    status: Literal["SUBMITTED", "PENDING", "SUCCESS"]
    adopted: bool = False
    poll: Poll
    message: str = ""


class NamespaceOperationsState(_State):
    """A failed build's wait, before its rollback, for the namespace creations still running
    (Cloud Map CREATE_NAMESPACE operations SUBMITTED or PENDING): the namespace one of them
    creates appears when it ends, and the rollback must find it (issue 15)."""

    done: bool
    #: ids of the operations still running at the last check
    pending: list[str] = []
    poll: Poll
    message: str = ""


class TaskDefinitionRef(_State):
    name: str
    #: "family:revision" (the ARN is derived when needed)
    taskDefinition: str
    logGroup: str


class Pipeline(_State):
    """Where the pipelined build stands (steps/pipeline.py; $.build.pipeline): bounded, N short
    strings and four numbers."""

    #: Service name -> "family:revision", for the services whose task definition is registered
    #: (a prefix of the spec's services).
    taskDefinitions: dict[str, str] = {}
    #: The first services of the spec (this many) have their ECS service created or existing.
    servicesDone: int = 0
    #: Invocations of the loop so far, and at most (the ASL's Choice compares them).
    invocation: int = 0
    maxInvocations: int = 1
    #: Every task definition registered and every missing ECS service created.
    done: bool = False


class Restore(_State):
    """What a build changed on resources that existed before it, as they were: a failed
    build's rollback puts them back (steps/restore.py) before removing what it created."""

    #: ECS service name -> the UpdateService fields as they were (taskDefinition,
    #: desiredCount, networkConfiguration).
    services: dict[str, dict[str, Any]] = {}
    #: Cloud Map service (registry) name -> its DnsRecords as they were.
    registries: dict[str, list[dict[str, Any]]] = {}
    #: "<service>/<instance id>" -> the static instance's attributes as they were; None: it
    #: did not exist (the build registered it).
    instances: dict[str, dict[str, str] | None] = {}
    #: Log group name -> its retention in days as it was (None: never expire).
    logGroups: dict[str, int | None] = {}
    #: ECS service name -> its Application Auto Scaling target as it was (MinCapacity,
    #: MaxCapacity, envbuild's policies: autoscaling.before); None: it had none (the build
    #: registered one).
    scaling: dict[str, dict[str, Any] | None] = {}

    def is_empty(self) -> bool:
        return not (
            self.services or self.registries or self.instances or self.logGroups or self.scaling
        )


class ServicesState(_State):
    ready: bool
    poll: Poll
    message: str = ""
    #: ECS service name -> "created" | "updated" | "adopted"
    actions: dict[str, str] = {}
    #: Cloud Map operations the build started and Check Services awaits:
    #: "RegisterInstance <service>/<id>" or "UpdateService <registry>" -> operation id
    operations: dict[str, str] = {}
    #: Service names an earlier Check Services poll of this build found ready (ECS and Cloud Map):
    #: later polls read Cloud Map only for the others. Per build: Create Services starts it
    #: empty, and it empties again once every service is ready.
    readyServices: list[str] = []
    #: What this build updated, as it was before: a rollback restores it (None: it updated
    #: nothing that existed before, so the failure path skips the restore).
    previous: Restore | None = None
    #: What the build changed (converge.change_report: rows of steps/diff.py, counts), for the
    #: build's output.
    changes: dict[str, Any] = {}
    #: ECS services envbuild created for the environment that the spec no longer lists.
    removed: list[str] = []
    #: With prune: the teardown's RemovalPlan for the removed services (None: nothing to prune).
    prune: dict[str, Any] | None = None


class ProbeState(_State):
    """The in-VPC DNS probe: requested (spec verify.probe), its task, and each name's answers."""

    requested: bool
    done: bool = True
    taskArn: str | None = None
    taskDefinition: str | None = None
    poll: Poll | None = None
    exitCode: int | None = None
    #: DNS name -> the A answers the VPC resolver gave the probe
    answers: dict[str, list[str]] = {}
    message: str = ""
