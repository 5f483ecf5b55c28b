"""pydantic models of the events the state machine sends to each handler (see the ASL's Parameters)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from envbuild_lambda.spec import EnvironmentSpec, Service
from envbuild_lambda.state import NamespaceState, ProbeState, ServicesState, TaskDefinitionRef


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpecInput(_Input):
    spec: EnvironmentSpec
    #: The build execution (ARN): tagged on what it creates, the ledger of a rollback.
    build: str | None = None


class LockInput(_Input):
    environment: str
    executionArn: str


class CheckNamespaceInput(_Input):
    namespace: NamespaceState


class CreateRegistriesInput(_Input):
    spec: EnvironmentSpec
    namespace: NamespaceState
    build: str | None = None


class RegisterTaskDefinitionInput(_Input):
    environment: str
    executionRoleArn: str
    taskRoleArn: str
    service: Service
    build: str | None = None


class CreateServicesInput(_Input):
    spec: EnvironmentSpec
    registries: dict[str, str]
    taskDefinitions: list[TaskDefinitionRef]
    build: str | None = None

    def task_definition_by_name(self) -> dict[str, str]:
        return {ref.name: ref.taskDefinition for ref in self.taskDefinitions}


class CheckServicesInput(_Input):
    spec: EnvironmentSpec
    registries: dict[str, str]
    deployment: ServicesState


class VerifyDnsInput(CreateServicesInput):
    namespace: NamespaceState
    #: $$.Execution.StartTime: the build's duration metric
    startedAt: str | None = None


class CheckProbeInput(_Input):
    spec: EnvironmentSpec
    probe: ProbeState
