"""pydantic models of the events the state machine sends to each handler (see the ASL's Parameters)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from envbuild_lambda.spec import EnvironmentSpec, expand_state
from envbuild_lambda.state import (
    NamespaceOperationsState,
    NamespaceState,
    Pipeline,
    ProbeState,
    Restore,
    ServicesState,
)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _spec_from_state(cls, data: Any) -> Any:
        """A spec in its state form (spec.state_form: the services' shared values given once)
        is parsed as the spec it stands for."""
        if isinstance(data, dict) and "spec" in data:
            return {**data, "spec": expand_state(data["spec"])}
        return data


class SpecInput(_Input):
    spec: EnvironmentSpec
    #: The build execution (ARN): tagged on what it creates, the ledger of a rollback.
    build: str | None = None


class LockInput(_Input):
    environment: str
    executionArn: str


class TeardownLockInput(_Input):
    #: The teardown execution's whole input (a spec or {"plan": ...}, validated by the lock step).
    teardown: Any = None
    executionArn: str
    #: $$.Execution.Name (null on emulators when StartExecution was given no name).
    executionName: str | None = None


class CheckNamespaceInput(_Input):
    namespace: NamespaceState


class NamespaceOperationsInput(_Input):
    """The failure path's wait for namespace creations in flight: None at the first look."""

    namespaceOperations: NamespaceOperationsState | None = None


class CreateRegistriesInput(_Input):
    spec: EnvironmentSpec
    namespace: NamespaceState
    build: str | None = None


class RegisterTaskDefinitionsInput(_Input):
    """The Parallel's task-definition branch: registers while the namespace is created."""

    spec: EnvironmentSpec
    build: str | None = None


class PipelineInput(_Input):
    """One turn of the loop "Register Task Definitions And Create Services" (steps/pipeline.py)."""

    spec: EnvironmentSpec
    registries: dict[str, str]
    pipeline: Pipeline
    build: str | None = None


class CreateServicesInput(_Input):
    spec: EnvironmentSpec
    registries: dict[str, str]
    #: Service name -> "family:revision" (the pipelined build's $.build.pipeline.taskDefinitions;
    #: a list of mappings is merged).
    taskDefinitions: dict[str, str]
    build: str | None = None
    #: The namespace (for the Cloud Map services the spec no longer lists).
    namespace: NamespaceState | None = None
    #: The registries Create Registries created in this build (the rest existed).
    registriesCreated: list[str] = []

    @field_validator("taskDefinitions", mode="before")
    @classmethod
    def _merge_batches(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(batch, dict) for batch in value):
            return {name: ref for batch in value for name, ref in batch.items()}
        return value

    def task_definition_by_name(self) -> dict[str, str]:
        return dict(self.taskDefinitions)


class RestoreInput(_Input):
    """A failed build's restore of what it updated (steps/restore.py)."""

    spec: EnvironmentSpec
    registries: dict[str, str] = {}
    previous: Restore
    #: The failed build execution (ARN): the restore's Cloud Map request tokens are its own.
    build: str | None = None


class CheckServicesInput(_Input):
    spec: EnvironmentSpec
    registries: dict[str, str]
    deployment: ServicesState
    #: Service name -> "family:revision" the build set (as in CreateServicesInput): a FAILED
    #: deployment of it, or a service ECS rolled back from it, fails the build at once.
    taskDefinitions: dict[str, str] = {}

    @field_validator("taskDefinitions", mode="before")
    @classmethod
    def _merge_batches(cls, value: Any) -> Any:
        return CreateServicesInput._merge_batches(value)


class VerifyDnsInput(CreateServicesInput):
    namespace: NamespaceState
    #: ECS services of the environment the spec no longer lists (CreateServices' report).
    removed: list[str] = []
    #: What the build changed (CreateServices' report: converge.change_report).
    changes: dict[str, Any] = {}
    #: $$.Execution.StartTime: the build's duration metric
    startedAt: str | None = None


class CheckProbeInput(_Input):
    spec: EnvironmentSpec
    probe: ProbeState
