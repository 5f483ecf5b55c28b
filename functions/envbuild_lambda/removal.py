"""The removal plan: what a teardown removes, and the state of its bounded waits.

The teardown state machine runs either from a spec (its "Plan Teardown" state discovers what
envbuild manages for the environment, by tags) or from ``{"plan": <RemovalPlan>}`` as given,
e.g. by a rollback for exactly what one build execution created (docs/design.md, "Teardown").
Every removal step takes the plan and removes only what it names, in dependency order; a
resource the plan names that no longer exists is skipped, so each step can be retried and a
plan can be run twice.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from envbuild_lambda.errors import InvalidPlan
from envbuild_lambda.spec import json_kind
from envbuild_lambda.state import Poll

#: "family:revision", as the build's TaskDefinitionRef and RegisterTaskDefinition return it.
TASK_DEFINITION = r"^[A-Za-z0-9_-]{1,255}:[1-9][0-9]*$"
#: Teardown options a spec input may carry beside the spec (the spec itself is accepted as-is).
OPTIONS = ("deleteLogGroups", "deregisterTaskDefinitions")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class NamespaceRef(_Model):
    id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]


class KeptResource(_Model):
    """A resource teardown found but leaves in place (adopted, or needed by something adopted)."""

    type: Literal["namespace", "registry", "ecsService", "logGroup", "taskDefinition", "parameter"]
    id: str
    name: str
    reason: str


class RemovalPlan(_Model):
    """Exactly what to remove. The removal steps never look beyond it."""

    environment: str | None = None
    #: ECS cluster of ``ecsServices`` (name or ARN); required when there are ECS services.
    cluster: str | None = None
    #: ECS service names in ``cluster``.
    ecsServices: list[Annotated[str, Field(min_length=1)]] = []
    #: Cloud Map service (registry) ids, e.g. srv-…
    registries: list[Annotated[str, Field(min_length=1)]] = []
    namespace: NamespaceRef | None = None
    logGroups: list[Annotated[str, Field(min_length=1)]] = []
    #: "family:revision"
    taskDefinitions: list[Annotated[str, Field(pattern=TASK_DEFINITION)]] = []
    #: SSM parameter names (the build's outputs, /envbuild/<environment>/<NAME>)
    parameters: list[Annotated[str, Field(pattern=r"^/envbuild/[^/]+/[^/]+$")]] = []
    #: Reported, never touched.
    kept: list[KeptResource] = []
    #: Cloud Map service id -> name of ``registries`` (to forget them in the environment record).
    registryNames: dict[str, str] = {}
    #: Names the environment record may drop once this plan's removal succeeded, beside what it
    #: removed: a whole-environment teardown leaves nothing of the environment's but what it
    #: keeps on purpose (kind -> names).
    forget: dict[str, list[str]] = {}
    #: Where the spec disagreed with the environment record (the record was followed).
    notes: list[str] = []

    @model_validator(mode="after")
    def _cluster_for_services(self) -> RemovalPlan:
        if self.ecsServices and not self.cluster:
            raise ValueError("cluster is required when ecsServices is not empty")
        return self

    def is_empty(self) -> bool:
        return not (
            self.ecsServices
            or self.registries
            or self.namespace
            or self.logGroups
            or self.taskDefinitions
            or self.parameters
        )


#: The fields a user writes in a plan (the rest are filled in by the teardown's planning).
PLAN_FIELDS = (
    "environment",
    "cluster",
    "ecsServices",
    "registries",
    "namespace",
    "logGroups",
    "taskDefinitions",
    "parameters",
    "kept",
)


def parse_plan(raw: object) -> RemovalPlan:
    """Validate a plan given as input; InvalidPlan names every bad field."""
    if not isinstance(raw, dict):
        raise InvalidPlan(
            f"the plan must be a JSON object (a removal plan: {', '.join(PLAN_FIELDS)}),"
            f" got {json_kind(raw)}; to remove everything envbuild manages for an environment,"
            " start the teardown with the environment's spec instead of a plan"
        )
    try:
        return RemovalPlan.model_validate(raw)
    except ValidationError as error:
        problems = [_describe(item) for item in error.errors(include_url=False)]
        raise InvalidPlan(
            f"{len(problems)} problem(s) in the removal plan: " + "; ".join(problems)
        ) from None


def _describe(item: Any) -> str:
    where = "plan" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
    )
    if item["type"] == "extra_forbidden":
        import difflib  # a bad input only: kept out of every cold start

        guess = difflib.get_close_matches(str(item["loc"][-1]), list(RemovalPlan.model_fields), 1)
        hint = (
            f"did you mean '{guess[0]}'?"
            if guess
            else f"allowed: {', '.join(RemovalPlan.model_fields)}"
        )
        return f"{where}: unknown field ({hint})"
    if item["type"] == "missing":
        return f"{where}: required field is missing"
    return f"{where}: {str(item['msg']).removeprefix('Value error, ')}"


def split_options(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A teardown input = the build's spec + optional booleans, and ``createdBy`` (a build
    execution ARN: remove only what that build created, as its rollback does); returns
    (spec, options)."""
    # AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: set by a parent execution (the build's rollback)
    # to link the two in the console; lock: added by the teardown's own Acquire Lock state.
    ignored = (*OPTIONS, "createdBy", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID", "lock")
    spec = {key: value for key, value in raw.items() if key not in ignored}
    options: dict[str, Any] = {}
    for key in OPTIONS:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            raise InvalidPlan(f"{key} must be true or false, got {value!r}")
        options[key] = value
    created_by = raw.get("createdBy")
    if created_by is not None and not (
        isinstance(created_by, str) and created_by.startswith("arn:")
    ):
        raise InvalidPlan(f"createdBy must be a build execution ARN, got {created_by!r}")
    options["createdBy"] = created_by
    return spec, options


class Progress(_Model):
    """Where one removal step and its bounded wait stand (the ASL's Choice reads done/poll)."""

    done: bool
    poll: Poll
    message: str = ""
    #: What this step removed (ECS service names, "registry/instance", ids, …).
    removed: list[str] = []
    #: What it still waits for (ECS service names or Cloud Map operation ids).
    pending: list[str] = []


class PlanInput(_Model):
    """The event of "Plan Teardown": the execution input (a spec and the teardown options)."""

    input: dict[str, Any]


class StepInput(_Model):
    """The event of every removal step after planning (the ASL's Parameters)."""

    #: As given (any JSON): checked by parse_plan, which names what is wrong (InvalidPlan).
    plan: object
    progress: Progress | None = None

    def removal_plan(self) -> RemovalPlan:
        return parse_plan(self.plan)

    def require_progress(self) -> Progress:
        if self.progress is None:
            raise InvalidPlan("this step needs the progress of the step before it")
        return self.progress


class OperationsInput(_Model):
    """The event of the Cloud Map operations check: the progress of the step that started them."""

    progress: Progress


class FinishInput(_Model):
    """The last step's event: the plan and what each removal step removed (by kind)."""

    plan: object
    removed: dict[str, list[str]]

    def removal_plan(self) -> RemovalPlan:
        return parse_plan(self.plan)


def short(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
