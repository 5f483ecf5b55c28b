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


class ServicesState(_State):
    ready: bool
    poll: Poll
    message: str = ""
    #: ECS service name -> "created" | "updated" | "adopted"
    actions: dict[str, str] = {}
    #: Cloud Map operations the build started and Check Services awaits:
    #: "RegisterInstance <service>/<id>" or "UpdateService <registry>" -> operation id
    operations: dict[str, str] = {}
    #: ECS service name -> what UpdateService changed, as it was before this build updated it
    #: (taskDefinition, desiredCount, networkConfiguration): the request a rollback sends.
    previous: dict[str, dict[str, Any]] = {}
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
