"""The environment spec: the workflow's input and its single source of truth.

One pydantic v2 model validates the workflow input (ValidateSpec), generates the committed JSON
Schema (``python -m envbuild_lambda.spec``) and documents the fields. Unknown fields are errors.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import sys
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from envbuild_lambda.errors import InvalidSpec

DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ENV_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Joins the environment and the service in a task definition family and a log group name: never
#: in a DNS label, so "<environment>_" is the prefix of exactly one environment's names.
NAME_SEPARATOR = "_"
ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$"
CLUSTER = (
    r"^([A-Za-z0-9_-]{1,255}|arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]{1,255})$"
)
VPC_ID = r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$"
SUBNET_ID = r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$"
SECURITY_GROUP_ID = r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$"

#: Tags (the same rules in ECS, Cloud Map and CloudWatch Logs): at most 50 per resource, keys of
#: 1-128 and values of 0-256 Unicode letters, digits, spaces and _ . : / = + - @; keys starting
#: aws: are AWS's. envbuild puts its own envbuild:* tags (at most 3) beside the spec's.
#: https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html
TAG_PUNCTUATION = frozenset("_.:/=+-@")
MAX_TAGS = 50
MAX_SPEC_TAGS = MAX_TAGS - 3
RESERVED_TAG_PREFIXES = ("aws:", "envbuild:")

#: CloudWatch Logs' allowed retention periods in days (PutRetentionPolicy).
#: https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
DEFAULT_LOG_RETENTION_DAYS = 30

#: A container name (ContainerDefinition.name): up to 255 letters, digits, _ and -.
CONTAINER_NAME = r"^[A-Za-z0-9_-]{1,255}$"
#: A Secrets Manager secret ARN (optionally :json-key:version-stage:version-id) or an SSM
#: parameter ARN: what a container's secrets[].valueFrom takes.
VALUE_FROM_ARN = (
    r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}"
    r"(:[^:\s]*(:[^:\s]*(:[^:\s]*)?)?)?"
    r"|arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9/_.-]{1,2048})$"
)
#: A Fargate platform version: LATEST or x.y.z.
PLATFORM_VERSION = r"^(LATEST|[0-9]+\.[0-9]+\.[0-9]+)$"

#: Cloud Map instance ids and custom attributes (API_RegisterInstance): the id 1-64 characters
#: of [0-9a-zA-Z_/:.@-]; at most 30 custom attributes, keys up to 255 and values up to 1024
#: printable ASCII characters; keys starting with AWS_ are Cloud Map's own (reserved).
#: https://docs.aws.amazon.com/cloud-map/latest/api/API_RegisterInstance.html
INSTANCE_ID = r"^[0-9a-zA-Z_/:.@-]{1,64}$"
ATTRIBUTE_KEY = r"^[a-zA-Z0-9!-~]{1,255}$"
ATTRIBUTE_VALUE = r"^([a-zA-Z0-9!-~][ \ta-zA-Z0-9!-~]*){0,1}[a-zA-Z0-9!-~]{0,1}$"
MAX_CUSTOM_ATTRIBUTES = 30
RESERVED_ATTRIBUTE_PREFIX = "AWS_"

#: What each pattern means, for error messages a user can act on.
PATTERN_HINTS = {
    DNS_LABEL: "must be a lower-case DNS label: letters, digits and hyphens, 1-63 characters, e.g. web",
    ENV_VAR_NAME: "must be an environment variable name: letters, digits and _, not starting with a digit",
    ROLE_ARN: "must be an IAM role ARN, e.g. arn:aws:iam::111122223333:role/ecsTaskRole",
    CLUSTER: "must be an ECS cluster name or ARN",
    VPC_ID: "must be a VPC id, e.g. vpc-0123456789abcdef0",
    SUBNET_ID: "must be a subnet id, e.g. subnet-0123456789abcdef0",
    SECURITY_GROUP_ID: "must be a security group id, e.g. sg-0123456789abcdef0",
    INSTANCE_ID: "must be a Cloud Map instance id: 1-64 of letters, digits and _/:.@-",
    ATTRIBUTE_KEY: "must be an attribute name of printable ASCII characters without spaces",
    ATTRIBUTE_VALUE: "must be printable ASCII, without leading or trailing spaces",
    CONTAINER_NAME: "must be a container name: 1-255 letters, digits, _ and -",
    VALUE_FROM_ARN: (
        "must be a Secrets Manager secret ARN (optionally with :json-key:version-stage:version-id)"
        " or an SSM parameter ARN, e.g. arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf"
    ),
    PLATFORM_VERSION: "must be LATEST or a Fargate platform version such as 1.4.0",
}

#: Valid Fargate task-level (cpu -> memory) pairs, in MiB, from the ECS developer guide
#: ("Task CPU and memory", Fargate).
FARGATE_MEMORY: dict[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: frozenset(range(1024, 4097, 1024)),
    1024: frozenset(range(2048, 8193, 1024)),
    2048: frozenset(range(4096, 16385, 1024)),
    4096: frozenset(range(8192, 30721, 1024)),
    8192: frozenset(range(16384, 61441, 4096)),
    16384: frozenset(range(32768, 122881, 8192)),
}

#: cpu/memory: "256" as the workshop writes it, or 256.
UNITS_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "minimum": 0}]
}

#: Defaults the workshop assumes (its task definitions name these roles in the caller's account).
DEFAULT_EXECUTION_ROLE = "ecsTaskExecutionRole"
DEFAULT_TASK_ROLE = "ecsTaskRole"

TAG_ENVIRONMENT = "envbuild:environment"
TAG_MANAGED = "envbuild:managed"
#: The build execution that created a resource: the ledger a rollback removes exactly.
TAG_BUILD = "envbuild:build"

MAX_SERVICES = 500


def managed_tags(environment: str, build: str | None = None) -> dict[str, str]:
    """Tags on every resource envbuild creates for an environment (and the creating execution)."""
    tags = {TAG_ENVIRONMENT: environment, TAG_MANAGED: "true"}
    if build:
        tags[TAG_BUILD] = build
    return tags


def family_prefix(environment: str) -> str:
    """What every task definition family of the environment starts with (and no other's)."""
    return f"{environment}{NAME_SEPARATOR}"


def log_group_prefix(environment: str) -> str:
    """What every log group of the environment starts with (and no other's)."""
    return f"/ecs/{family_prefix(environment)}"


def is_managed(tags: dict[str, str], environment: str, created_by: str | None = None) -> bool:
    """Managed by envbuild for this environment (and, for a rollback, created by that build).

    Only such a resource is ever changed by a re-run or deleted; anything else is adopted as is."""
    return (
        tags.get(TAG_ENVIRONMENT) == environment
        and tags.get(TAG_MANAGED) == "true"
        and (created_by is None or tags.get(TAG_BUILD) == created_by)
    )


_STRICT = ConfigDict(
    extra="forbid", populate_by_name=False, str_strip_whitespace=False, defer_build=True
)


def fargate_pair_problem(cpu_units: str, memory_mib: str) -> str | None:
    """What is wrong with a cpu/memory pair on Fargate, or None."""
    cpu, memory = int(cpu_units), int(memory_mib)
    if cpu not in FARGATE_MEMORY:
        return f"cpu {cpu_units} is not a Fargate size, use one of {', '.join(str(c) for c in FARGATE_MEMORY)}"
    if memory not in FARGATE_MEMORY[cpu]:
        allowed = sorted(FARGATE_MEMORY[cpu])
        return (
            f"memory {memory_mib} is not valid with cpu {cpu_units} on Fargate; use {allowed[0]}..{allowed[-1]}"
            f" ({', '.join(str(m) for m in allowed[:6])}{', ...' if len(allowed) > 6 else ''})"
        )
    return None


def _pair_problems(raw: dict[str, Any], reported: list[str]) -> list[str]:
    """The cpu/memory pair of every service whose other fields failed too: pydantic runs a
    model's cross-field check only once its fields are valid, so a bad pair would otherwise be
    reported only after the other errors are fixed."""
    problems: list[str] = []
    services = raw.get("services")
    for index, service in enumerate(services if isinstance(services, list) else []):
        if not isinstance(service, dict):
            continue
        try:
            cpu = _units(service.get("cpu", "256"), "cpu")
            memory = _units(service.get("memory", "512"), "memory")
        except ValueError:
            continue  # reported as a field error
        problem = fargate_pair_problem(cpu, memory)
        line = f"services[{index}]: {problem}"
        if problem and not any(line in text for text in reported):
            problems.append(line)
    return problems


def _units(value: object, field: str) -> str:
    """Accept "256" or 256 (ASCII digits only); anything else is an error naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f'{field} must be a string of a whole number such as "256"')
    text = str(value)
    if not (text.isascii() and text.isdigit()):
        unit = "CPU units" if field == "cpu" else "MiB"
        raise ValueError(f"{field} must be a whole number of {unit}, got {text!r}")
    return str(int(text))


class Namespace(BaseModel):
    """The Cloud Map private DNS namespace (and its Route 53 private hosted zone)."""

    model_config = _STRICT

    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            description="Private DNS namespace name, e.g. workshop.local (lower-case DNS name).",
            examples=["workshop.local"],
        ),
    ]
    vpcId: Annotated[
        str,
        Field(pattern=VPC_ID, description="VPC the namespace's hosted zone is associated with."),
    ]
    description: Annotated[str, Field(max_length=1024, description="Namespace description.")] = ""

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        labels = value.removesuffix(".").split(".")
        if len(labels) < 1 or any(not re.fullmatch(DNS_LABEL, label) for label in labels):
            raise ValueError(
                f"{value!r} is not a valid DNS name: use lower-case labels of letters, digits and hyphens"
                " separated by dots, e.g. workshop.local"
            )
        return value.removesuffix(".")


class Network(BaseModel):
    """awsvpc network configuration shared by every ECS service of the environment."""

    model_config = _STRICT

    subnets: Annotated[
        list[Annotated[str, Field(pattern=SUBNET_ID)]],
        Field(
            min_length=1,
            max_length=16,
            description="Subnets for the tasks (private subnets in the workshop).",
        ),
    ]
    securityGroups: Annotated[
        list[Annotated[str, Field(pattern=SECURITY_GROUP_ID)]],
        Field(min_length=1, max_length=5, description="Security groups for the tasks."),
    ]
    assignPublicIp: Annotated[
        Literal["ENABLED", "DISABLED"], Field(description="Whether tasks get a public IP.")
    ] = "DISABLED"

    @field_validator("subnets", "securityGroups")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        duplicates = sorted({item for item in value if value.count(item) > 1})
        if duplicates:
            raise ValueError(f"duplicate entries: {', '.join(duplicates)}")
        return value


class StaticInstance(BaseModel):
    """A target outside ECS registered in the service's Cloud Map registry (the workshop's 7.2)."""

    model_config = _STRICT

    id: Annotated[
        str,
        Field(
            pattern=INSTANCE_ID,
            description="Cloud Map instance id, unique in the service, e.g. custom-web-instance.",
            examples=["custom-web-instance"],
        ),
    ]
    ipv4: Annotated[
        str,
        Field(
            description="IPv4 address the service's DNS name answers with (AWS_INSTANCE_IPV4).",
            examples=["10.0.3.100"],
        ),
    ]
    attributes: Annotated[
        dict[
            Annotated[str, Field(pattern=ATTRIBUTE_KEY)],
            Annotated[str, Field(max_length=1024, pattern=ATTRIBUTE_VALUE)],
        ],
        Field(
            description=(
                "Custom attributes (at most 30; names starting with AWS_ are reserved), e.g."
                ' {"environment": "production", "version": "1.0"}.'
            )
        ),
    ] = {}

    @field_validator("ipv4")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError("must be an IPv4 address such as 10.0.3.100") from None
        return str(address)

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(k for k in value if k.upper().startswith(RESERVED_ATTRIBUTE_PREFIX))
        if reserved:
            raise ValueError(
                f"{', '.join(reserved)}: attribute names starting with AWS_ are reserved for"
                " Cloud Map (AWS_INSTANCE_IPV4 comes from ipv4)"
            )
        if len(value) > MAX_CUSTOM_ATTRIBUTES:
            raise ValueError(
                f"{len(value)} custom attributes, Cloud Map allows at most {MAX_CUSTOM_ATTRIBUTES}"
            )
        return value

    def cloud_map_attributes(self) -> dict[str, str]:
        """What RegisterInstance receives."""
        return {"AWS_INSTANCE_IPV4": self.ipv4, **self.attributes}


Tags = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=128)],
        Annotated[str, Field(max_length=256)],
    ],
    Field(
        max_length=MAX_SPEC_TAGS,
        description=(
            "Tags on every resource envbuild creates, beside its own envbuild:* tags (keys"
            f" starting aws: or envbuild: are reserved; at most {MAX_SPEC_TAGS})."
        ),
    ),
]


def _tag_text(text: str) -> bool:
    """Letters, digits, spaces and _ . : / = + - @ (Unicode letters and digits too)."""
    return all(c.isalnum() or c == " " or c in TAG_PUNCTUATION for c in text)


def _check_tags(value: dict[str, str]) -> dict[str, str]:
    bad = sorted(k for k, v in value.items() if not (_tag_text(k) and _tag_text(v)))
    if bad:
        raise ValueError(
            f"{', '.join(repr(k) for k in bad)}: tag keys and values may only hold letters, digits,"
            " spaces and _ . : / = + - @"
        )
    reserved = sorted(k for k in value if k.lower().startswith(RESERVED_TAG_PREFIXES))
    if reserved:
        raise ValueError(
            f"{', '.join(reserved)}: tag keys starting with aws: or envbuild: are reserved"
        )
    return value


def _check_retention(value: int | None) -> int | None:
    if value is not None and value not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"{value} is not a CloudWatch Logs retention period; use one of"
            f" {', '.join(map(str, LOG_RETENTION_DAYS))} (or null: never expire)"
        )
    return value


LogRetention = Annotated[
    StrictInt | None,
    Field(
        description=(
            "Retention of the log groups in days, one of CloudWatch's"
            f" {', '.join(map(str, LOG_RETENTION_DAYS))}; null: never expire."
        )
    ),
]

Command = Annotated[
    list[Annotated[str, Field(max_length=8192)]],
    Field(max_length=100),
]

EnvironmentVars = Annotated[
    dict[
        Annotated[str, Field(pattern=ENV_VAR_NAME, max_length=255)],
        Annotated[str, Field(max_length=32768)],
    ],
    Field(max_length=200, description="Container environment variables."),
]

Secrets = Annotated[
    dict[
        Annotated[str, Field(pattern=ENV_VAR_NAME, max_length=255)],
        Annotated[str, Field(pattern=VALUE_FROM_ARN)],
    ],
    Field(
        max_length=100,
        description=(
            "Environment variables read from Secrets Manager or SSM Parameter Store at task start:"
            " {ENV_NAME: ARN} (the container's secrets, valueFrom). Only ARNs enter the workflow."
        ),
    ),
]


class HealthCheck(BaseModel):
    """The container's health check (ECS HealthCheck); ECS reports it to Cloud Map."""

    model_config = _STRICT

    command: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=8192)]],
        Field(
            min_length=2,
            max_length=100,
            description=(
                "CMD followed by a command and its arguments, or CMD-SHELL and a shell command,"
                ' e.g. ["CMD-SHELL", "curl -f http://localhost/ || exit 1"].'
            ),
        ),
    ]
    interval: Annotated[
        StrictInt, Field(ge=5, le=300, description="Seconds between checks (5-300).")
    ] = 30
    timeout: Annotated[
        StrictInt, Field(ge=2, le=60, description="Seconds a check may take (2-60).")
    ] = 5
    retries: Annotated[
        StrictInt, Field(ge=1, le=10, description="Failed checks before unhealthy (1-10).")
    ] = 3
    startPeriod: Annotated[
        StrictInt | None,
        Field(ge=0, le=300, description="Grace period in seconds before failures count (0-300)."),
    ] = None

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str]) -> list[str]:
        if value[0] not in ("CMD", "CMD-SHELL"):
            raise ValueError(
                f"must start with CMD or CMD-SHELL, got {value[0]!r}"
                ' (e.g. ["CMD-SHELL", "curl -f http://localhost/ || exit 1"])'
            )
        return value


class DependsOn(BaseModel):
    """A container this one waits for (ECS ContainerDependency)."""

    model_config = _STRICT

    container: Annotated[
        str,
        Field(pattern=CONTAINER_NAME, description="The service's or a sidecar's container name."),
    ]
    condition: Annotated[
        Literal["START", "COMPLETE", "SUCCESS", "HEALTHY"],
        Field(
            description=(
                "START, COMPLETE, SUCCESS (the container exits 0; not on an essential container)"
                " or HEALTHY (the container has a health check)."
            )
        ),
    ]


class Sidecar(BaseModel):
    """A further container in the service's task."""

    model_config = _STRICT

    name: Annotated[
        str, Field(pattern=CONTAINER_NAME, description="Container name, unique in the task.")
    ]
    image: Annotated[str, Field(min_length=1, max_length=2048, description="Container image.")]
    essential: Annotated[
        StrictBool, Field(description="The task stops when this container stops.")
    ] = True
    command: Annotated[Command, Field(description="The container's command.")] = []
    entryPoint: Annotated[Command, Field(description="The container's entry point.")] = []
    environment: EnvironmentVars = {}
    secrets: Secrets = {}
    port: Annotated[
        StrictInt | None, Field(ge=1, le=65535, description="Container port (TCP).")
    ] = None
    cpu: Annotated[
        StrictInt | None, Field(ge=0, le=16384, description="CPU units reserved for it.")
    ] = None
    memory: Annotated[
        StrictInt | None, Field(ge=6, le=122880, description="Hard memory limit in MiB (>= 6).")
    ] = None
    dependsOn: Annotated[
        list[DependsOn], Field(max_length=10, description="Containers it waits for.")
    ] = []

    @model_validator(mode="after")
    def _names(self) -> Sidecar:
        _no_overlap(self.environment, self.secrets)
        return self


def _no_overlap(environment: dict[str, str], secrets: dict[str, str]) -> None:
    both = sorted(set(environment) & set(secrets))
    if both:
        raise ValueError(
            f"{', '.join(both)}: set both in environment and in secrets; keep one of them"
        )


class CapacityProvider(BaseModel):
    """One item of the service's capacity provider strategy."""

    model_config = _STRICT

    capacityProvider: Annotated[
        Literal["FARGATE", "FARGATE_SPOT"], Field(description="FARGATE or FARGATE_SPOT.")
    ]
    weight: Annotated[
        StrictInt, Field(ge=0, le=1000, description="Relative share of the tasks (0-1000).")
    ] = 1
    base: Annotated[
        StrictInt, Field(ge=0, le=100000, description="Tasks run on it first (0-100000).")
    ] = 0


class Deployment(BaseModel):
    """How many tasks a deployment keeps and may add (ECS DeploymentConfiguration)."""

    model_config = _STRICT

    minimumHealthyPercent: Annotated[
        StrictInt, Field(ge=0, le=100, description="Lower limit of running tasks, percent.")
    ] = 100
    maximumPercent: Annotated[
        StrictInt, Field(ge=100, le=200, description="Upper limit of tasks, percent.")
    ] = 200

    @model_validator(mode="after")
    def _room(self) -> Deployment:
        if self.maximumPercent <= self.minimumHealthyPercent:
            raise ValueError(
                f"maximumPercent {self.maximumPercent} must be above minimumHealthyPercent"
                f" {self.minimumHealthyPercent}, or a deployment cannot replace a task"
            )
        return self


class Autoscaling(BaseModel):
    """Application Auto Scaling of the service's desiredCount (target tracking)."""

    model_config = _STRICT

    minCount: Annotated[StrictInt, Field(ge=0, le=1000, description="Fewest tasks.")]
    maxCount: Annotated[StrictInt, Field(ge=1, le=1000, description="Most tasks.")]
    targetCpuPercent: Annotated[
        StrictInt, Field(ge=1, le=100, description="Average CPU utilization to keep, percent.")
    ]
    targetMemoryPercent: Annotated[
        StrictInt | None,
        Field(ge=1, le=100, description="Average memory utilization to keep, percent."),
    ] = None

    @model_validator(mode="after")
    def _range(self) -> Autoscaling:
        if self.maxCount < self.minCount:
            raise ValueError(f"maxCount {self.maxCount} is below minCount {self.minCount}")
        return self


class Overrides(BaseModel):
    """Any other field of the ECS requests, merged last (validated against botocore's model)."""

    model_config = _STRICT

    taskDefinition: Annotated[
        dict[str, Any], Field(description="Fields of RegisterTaskDefinition.")
    ] = {}
    container: Annotated[
        dict[str, Any], Field(description="Fields of the service's ContainerDefinition.")
    ] = {}
    service: Annotated[
        dict[str, Any], Field(description="Fields of CreateService (and UpdateService).")
    ] = {}

    @model_validator(mode="after")
    def _ecs_shapes(self) -> Overrides:
        from envbuild_lambda.overrides import problems

        errors = [
            InitErrorDetails(
                type=PydanticCustomError("override", "{message}", {"message": message}),
                loc=(part, *_path(where)),
                input=None,
            )
            for part in ("taskDefinition", "container", "service")
            if getattr(self, part)
            for where, message in problems(part, getattr(self, part))
        ]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


def _path(where: str) -> tuple[str | int, ...]:
    """'ulimits[0].softLimit' -> ('ulimits', 0, 'softLimit')."""
    parts: list[str | int] = []
    for piece in where.split("."):
        name, *indexes = piece.split("[")
        if name:
            parts.append(name)
        parts += [int(i.rstrip("]")) for i in indexes if i.rstrip("]").isdigit()]
    return tuple(parts)


class Service(BaseModel):
    """One service: a Cloud Map registry, a Fargate task definition and an ECS service."""

    model_config = _STRICT

    name: Annotated[
        str,
        Field(
            pattern=DNS_LABEL,
            description="DNS label of the service: answers as <name>.<namespace>; ECS service <name>-service.",
            examples=["web"],
        ),
    ]
    image: Annotated[str, Field(min_length=1, max_length=2048, description="Container image.")]
    port: Annotated[StrictInt, Field(ge=1, le=65535, description="Container port (TCP).")]
    desiredCount: Annotated[StrictInt, Field(ge=0, le=1000, description="Number of tasks.")] = 1
    cpu: Annotated[
        str,
        Field(description='Fargate task CPU units, e.g. "256".'),
        WithJsonSchema(UNITS_SCHEMA | {"description": 'Fargate task CPU units, e.g. "256".'}),
    ] = "256"
    memory: Annotated[
        str,
        Field(description='Fargate task memory in MiB, valid for the cpu, e.g. "512".'),
        WithJsonSchema(
            UNITS_SCHEMA | {"description": "Fargate task memory in MiB, valid for the cpu."}
        ),
    ] = "512"
    environment: EnvironmentVars = {}
    dnsTtl: Annotated[
        StrictInt, Field(ge=0, le=2147483647, description="TTL of the A records in seconds.")
    ] = 60
    instances: Annotated[
        list[StaticInstance],
        Field(
            max_length=1000,
            description=(
                "Static instances outside ECS registered beside the tasks (the DNS name answers"
                " with both). A service with only static instances sets desiredCount 0: its ECS"
                " service then runs no task."
            ),
        ),
    ] = []
    command: Annotated[
        Command, Field(description="The container's command (overrides the image's CMD).")
    ] = []
    entryPoint: Annotated[
        Command, Field(description="The container's entry point (overrides the image's).")
    ] = []
    secrets: Secrets = {}
    healthCheck: Annotated[
        HealthCheck | None,
        Field(
            description=(
                "Container health check: ECS reports it to Cloud Map (an unhealthy task leaves"
                " DNS); the build waits for healthy tasks."
            )
        ),
    ] = None
    sidecars: Annotated[
        list[Sidecar], Field(max_length=9, description="Further containers in the task.")
    ] = []
    dependsOn: Annotated[
        list[DependsOn],
        Field(max_length=10, description="Containers the service's container waits for."),
    ] = []
    cpuArchitecture: Annotated[
        Literal["X86_64", "ARM64"],
        Field(description="X86_64 or ARM64 (Graviton): the task definition's runtimePlatform."),
    ] = "X86_64"
    capacityProviders: Annotated[
        list[CapacityProvider] | None,
        Field(
            min_length=1,
            max_length=2,
            description=(
                "Capacity provider strategy (FARGATE, FARGATE_SPOT) instead of the FARGATE launch"
                " type; the cluster must have them."
            ),
        ),
    ] = None
    enableExecuteCommand: Annotated[
        StrictBool, Field(description="ECS Exec: a shell in the service's tasks.")
    ] = False
    dnsRecords: Annotated[
        list[Literal["A", "SRV"]],
        Field(
            min_length=1,
            max_length=2,
            description=(
                '["A"] or ["A", "SRV"]: with SRV the registry also answers SRV queries with the'
                " container port."
            ),
        ),
    ] = ["A"]
    deployment: Annotated[
        Deployment | None,
        Field(description="Deployment limits; default: ECS's (100 and 200 percent)."),
    ] = None
    tags: Annotated[
        Tags,
        Field(description="Tags of this service's resources, merged over the top-level tags."),
    ] = {}
    logRetentionDays: Annotated[
        LogRetention,
        Field(
            description=(
                "Retention of this service's log group (overrides the top-level one; null: never"
                " expire); absent: the top-level logRetentionDays."
            )
        ),
    ] = None
    platformVersion: Annotated[
        str, Field(pattern=PLATFORM_VERSION, description="Fargate platform version.")
    ] = "LATEST"
    network: Annotated[
        Network | None, Field(description="This service's network (overrides the top-level one).")
    ] = None
    autoscaling: Annotated[
        Autoscaling | None,
        Field(
            description=(
                "Target tracking of CPU (and memory): desiredCount is then the initial count and"
                " a re-run leaves the count to the scaler."
            )
        ),
    ] = None
    overrides: Annotated[
        Overrides,
        Field(description="Any other ECS field, merged last: the spec is never the limit."),
    ] = Overrides()

    @field_validator("instances")
    @classmethod
    def _unique_instances(cls, value: list[StaticInstance]) -> list[StaticInstance]:
        ids = [instance.id for instance in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"instance ids must be unique, repeated: {', '.join(duplicates)}")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_tags(value)

    @field_validator("logRetentionDays")
    @classmethod
    def _retention(cls, value: int | None) -> int | None:
        return _check_retention(value)

    @field_validator("dnsRecords")
    @classmethod
    def _dns_records(cls, value: list[str]) -> list[str]:
        if "A" not in value or len(set(value)) != len(value):
            raise ValueError('must be ["A"] or ["A", "SRV"]')
        return value

    @field_validator("capacityProviders")
    @classmethod
    def _strategy(cls, value: list[CapacityProvider] | None) -> list[CapacityProvider] | None:
        if value is None:
            return None
        names = [item.capacityProvider for item in value]
        if len(set(names)) != len(names):
            raise ValueError(f"each capacity provider at most once, repeated: {names[0]}")
        if sum(1 for item in value if item.base > 0) > 1:
            raise ValueError("only one capacity provider may have a base above 0")
        if all(item.weight == 0 for item in value):
            raise ValueError("at least one capacity provider needs a weight above 0")
        return value

    @field_validator("sidecars")
    @classmethod
    def _unique_sidecars(cls, value: list[Sidecar]) -> list[Sidecar]:
        names = [sidecar.name for sidecar in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"sidecar names must be unique, repeated: {', '.join(duplicates)}")
        return value

    @field_validator("cpu", mode="before")
    @classmethod
    def _cpu(cls, value: object) -> str:
        return _units(value, "cpu")

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: object) -> str:
        return _units(value, "memory")

    @model_validator(mode="after")
    def _fargate_pair(self) -> Service:
        problem = fargate_pair_problem(self.cpu, self.memory)
        if problem:
            raise ValueError(problem)
        self._check_containers()
        return self

    def _check_containers(self) -> None:
        """The task's containers together: names, ports, dependencies, resources; each problem
        reported at the field that causes it."""
        errors: list[InitErrorDetails] = []

        def error(loc: tuple[str | int, ...], message: str, value: object = None) -> None:
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("containers", "{message}", {"message": message}),
                    loc=loc,
                    input=value,
                )
            )

        both = sorted(set(self.environment) & set(self.secrets))
        if both:
            error(
                ("secrets",), f"{', '.join(both)}: set both in environment and in secrets; keep one"
            )
        essential = {self.name: True, **{s.name: s.essential for s in self.sidecars}}
        checked = {self.name} if self.healthCheck else set()
        ports = {self.port: self.name}
        for index, sidecar in enumerate(self.sidecars):
            if sidecar.name == self.name:
                error(
                    ("sidecars", index, "name"), "is the service's own container name", sidecar.name
                )
            if sidecar.port is not None:
                if sidecar.port in ports:
                    error(
                        ("sidecars", index, "port"),
                        f"port {sidecar.port} is already the port of {ports[sidecar.port]}",
                        sidecar.port,
                    )
                ports.setdefault(sidecar.port, sidecar.name)
        owners: list[tuple[tuple[str | int, ...], str, list[DependsOn]]] = [
            (("dependsOn",), self.name, self.dependsOn)
        ] + [
            (("sidecars", i, "dependsOn"), s.name, s.dependsOn) for i, s in enumerate(self.sidecars)
        ]
        for loc, owner, dependencies in owners:
            for j, dependency in enumerate(dependencies):
                target = dependency.container
                where = (*loc, j)
                if target == owner:
                    error((*where, "container"), "a container cannot depend on itself", target)
                elif target not in essential:
                    error(
                        (*where, "container"),
                        f"no container {target} in the task (containers: {', '.join(essential)})",
                        target,
                    )
                elif dependency.condition in ("COMPLETE", "SUCCESS") and essential[target]:
                    error(
                        (*where, "condition"),
                        f"{dependency.condition} cannot be used on the essential container {target}",
                        dependency.condition,
                    )
                elif dependency.condition == "HEALTHY" and target not in checked:
                    error(
                        (*where, "condition"),
                        f"HEALTHY needs a healthCheck on {target}",
                        dependency.condition,
                    )
        cpu = sum(s.cpu or 0 for s in self.sidecars)
        if cpu > int(self.cpu):
            error(("sidecars",), f"the sidecars reserve {cpu} CPU units, the task has {self.cpu}")
        memory = sum(s.memory or 0 for s in self.sidecars)
        if memory >= int(self.memory):
            error(
                ("sidecars",),
                f"the sidecars take {memory} MiB, the task has {self.memory}: none left for {self.name}",
            )
        spot = any(c.capacityProvider == "FARGATE_SPOT" for c in self.capacityProviders or [])
        if self.cpuArchitecture == "ARM64" and spot:
            error(
                ("capacityProviders",),
                "FARGATE_SPOT does not run ARM64 tasks: use FARGATE or cpuArchitecture X86_64",
            )
        if self.cpuArchitecture == "ARM64" and self.platformVersion != "LATEST":
            version = tuple(int(p) for p in self.platformVersion.split("."))
            if version < (1, 4, 0):
                error(
                    ("platformVersion",),
                    "ARM64 needs Fargate platform version 1.4.0 or later",
                    self.platformVersion,
                )
        if self.autoscaling is not None and not (
            self.autoscaling.minCount <= self.desiredCount <= self.autoscaling.maxCount
        ):
            error(
                ("desiredCount",),
                f"the initial desiredCount must be within autoscaling's {self.autoscaling.minCount}"
                f"..{self.autoscaling.maxCount}",
                self.desiredCount,
            )
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)

    # Names derived from the spec (docs/design.md). Kept out of the state to keep payloads small.
    # "_" joins them: allowed in a family and a log group name, never in either DNS label, so
    # no two (environment, service) pairs share a name (environment a + service b-web and
    # environment a-b + service web would both be "a-b-web" with "-").
    def family(self, environment: str) -> str:
        return f"{family_prefix(environment)}{self.name}"

    def log_group(self, environment: str) -> str:
        return f"{log_group_prefix(environment)}{self.name}"

    def effective_tags(self, spec_tags: dict[str, str]) -> dict[str, str]:
        """The spec's tags of this service's resources: the top-level ones, its own over them."""
        return {**spec_tags, **self.tags}

    def effective_log_retention(self, spec_retention: int | None) -> int | None:
        """The service's own logRetentionDays if it sets one (null: never expire), else the
        top-level one."""
        return (
            self.logRetentionDays if "logRetentionDays" in self.model_fields_set else spec_retention
        )

    def effective_network(self, spec_network: Network) -> Network:
        return self.network or spec_network

    @property
    def ecs_service_name(self) -> str:
        return f"{self.name}-service"

    def dns_name(self, namespace: str) -> str:
        return f"{self.name}.{namespace}"

    @property
    def expected_instances(self) -> int:
        """Instances the registry holds when the service is ready: its tasks and static ones."""
        return self.desiredCount + len(self.instances)

    @property
    def output_name(self) -> str:
        """The service's part of the output names (the workshop's step 8: WEB_SERVICE_ID)."""
        return self.name.upper().replace("-", "_")


class VerifyOptions(BaseModel):
    """How the build proves discovery works."""

    model_config = _STRICT

    probe: Annotated[
        bool,
        Field(
            description=(
                "Also run a one-off Fargate task in the environment's subnets that resolves every"
                " name through the VPC resolver (costs a task run; off by default)."
            )
        ),
    ] = False


class EnvironmentSpec(BaseModel):
    """An envbuild environment: the input of the build workflow."""

    model_config = ConfigDict(
        extra="forbid",
        defer_build=True,
        title="envbuild environment spec",
        json_schema_extra={"$id": "https://envbuild.dev/schema/environment-spec.schema.json"},
    )

    environment: Annotated[
        str,
        Field(
            pattern=DNS_LABEL,
            max_length=40,
            description="Lower-case DNS label naming the build (tags, execution name, outputs).",
            examples=["workshop"],
        ),
    ]
    namespace: Namespace
    cluster: Annotated[
        str, Field(pattern=CLUSTER, description="ECS cluster name or ARN (must exist).")
    ]
    network: Network
    executionRoleArn: Annotated[
        str | None,
        Field(
            pattern=ROLE_ARN,
            description="Task execution role; default: the account's ecsTaskExecutionRole.",
        ),
    ] = None
    taskRoleArn: Annotated[
        str | None,
        Field(pattern=ROLE_ARN, description="Task role; default: the account's ecsTaskRole."),
    ] = None
    tags: Annotated[
        Tags,
        Field(description="Tags on every resource envbuild creates (services may add their own)."),
    ] = {}
    logRetentionDays: Annotated[
        LogRetention,
        Field(
            description=(
                "Retention of the services' log groups in days (CloudWatch's allowed values);"
                " null: never expire."
            )
        ),
    ] = DEFAULT_LOG_RETENTION_DAYS
    onFailure: Annotated[
        Literal["rollback", "keep"],
        Field(
            description=(
                "On a failed build: rollback removes exactly what this build created (in dependency"
                " order; adopted resources are never touched); keep leaves it for a re-run."
            )
        ),
    ] = "rollback"
    services: Annotated[
        list[Service],
        Field(min_length=1, max_length=MAX_SERVICES, description="Services to build."),
    ]
    prune: Annotated[
        StrictBool,
        Field(
            description=(
                "On a re-run, delete the ECS services (with their Cloud Map services, log groups"
                " and task definitions) that envbuild created for this environment and that the"
                " spec no longer lists; false (default): report them and leave them running."
            )
        ),
    ] = False
    plan: Annotated[
        StrictBool,
        Field(
            description=(
                "Dry run: validate, run the preflight and compare the spec with the account; output"
                " per resource create / adopt / update / delete / conflict and change nothing (no"
                " lock taken)."
            )
        ),
    ] = False
    redeploy: Annotated[
        StrictBool,
        Field(
            description=(
                "Start a new deployment of every ECS service even if nothing in the spec changed"
                " (a mutable image tag such as :latest that moved); a service whose last"
                " deployment FAILED gets one without it. For one run: envbuild run --redeploy."
            )
        ),
    ] = False
    verify: Annotated[
        VerifyOptions, Field(description="Verification options (the three-way check always runs).")
    ] = VerifyOptions()

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_tags(value)

    @field_validator("logRetentionDays")
    @classmethod
    def _retention(cls, value: int | None) -> int | None:
        return _check_retention(value)

    @field_validator("services")
    @classmethod
    def _unique_names(cls, value: list[Service]) -> list[Service]:
        names = [service.name for service in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"service names must be unique, repeated: {', '.join(duplicates)}")
        return value

    @model_validator(mode="after")
    def _dns_names_fit(self) -> EnvironmentSpec:
        """<service>.<namespace> must be a DNS name (<= 253 characters), reported per service."""
        too_long = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "dns_name_too_long",
                    "{dns_name} would have {length} characters, more than the 253 of a DNS name:"
                    " use a shorter service or namespace name",
                    {"dns_name": f"{service.name}.{self.namespace.name[:20]}…", "length": length},
                ),
                loc=("services", index, "name"),
                input=service.name,
            )
            for index, service in enumerate(self.services)
            if (length := len(service.dns_name(self.namespace.name))) > 253
        ]
        too_many = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "too_many_tags",
                    "with the top-level tags the service's resources would have {count} tags,"
                    " more than the {limit} envbuild leaves to the spec",
                    {"count": count, "limit": MAX_SPEC_TAGS},
                ),
                loc=("services", index, "tags"),
                input=None,
            )
            for index, service in enumerate(self.services)
            if (count := len(service.effective_tags(self.tags))) > MAX_SPEC_TAGS
        ]
        if too_long or too_many:
            raise ValidationError.from_exception_data(type(self).__name__, too_long + too_many)
        return self

    @property
    def cluster_name(self) -> str:
        return self.cluster.rsplit("/", 1)[-1]

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def resource_tags(
        self, build: str | None = None, service: Service | None = None
    ) -> dict[str, str]:
        """The tags of a resource envbuild creates: the spec's (the service's over the top-level
        ones) and envbuild's own envbuild:* tags."""
        own = service.effective_tags(self.tags) if service is not None else self.tags
        return {**own, **managed_tags(self.environment, build)}

    def request_token(self, *parts: str, max_length: int = 64) -> str:
        """Deterministic idempotency token for one resource of this environment: the same in
        every build and retry, so a repeated request (a retried step, a duplicate build event, a
        re-run after a lost response) is answered with what the first one did.

        A caller whose resource is gone although AWS still answers the token with the old
        request (a Cloud Map operation that FAILED, a namespace deleted since) adds that old
        request's id as a further part: docs/convergence.md, "Idempotency tokens".
        Cloud Map's CreatorRequestId takes up to 64 characters, ECS's clientToken up to 36.
        """
        digest = hashlib.sha256(":".join((self.environment, *parts)).encode()).hexdigest()
        return f"envbuild-{digest}"[:max_length]


# --------------------------------------------------------------------------------------------
# Validation with errors a user can act on


def _is_secret_value(loc: tuple[int | str, ...]) -> bool:
    """A container environment value (may be a secret: never echoed in an error or a log).
    Its name is shown; pydantic locates an invalid name at (..., "environment", name, "[key]")."""
    return "environment" in loc[:-1] and loc[-1] != "[key]"


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(spec)"


def _known_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names allowed at the parent of ``loc`` (for "did you mean")."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = (
            current.model_fields.get(part)
            if isinstance(current, type) and issubclass(current, BaseModel)
            else None
        )
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)),
            None,
        )
        if current is None:
            return []
    return (
        list(current.model_fields)
        if isinstance(current, type) and issubclass(current, BaseModel)
        else []
    )


def describe_errors(
    error: ValidationError,
    model: type[BaseModel] | None = None,
    prefix: tuple[int | str, ...] = (),
) -> list[str]:
    """One line per error, naming the field. ``model`` (default EnvironmentSpec) is the model
    validated; ``prefix`` is where it sits in the spec (e.g. ("serviceDefaults",))."""
    return describe_error_items(error.errors(include_url=False), model, prefix)


def describe_error_items(
    items: list[ErrorDetails],
    model: type[BaseModel] | None = None,
    prefix: tuple[int | str, ...] = (),
) -> list[str]:
    """``describe_errors`` of some of a ValidationError's ``errors()``."""
    problems: list[str] = []
    for item in items:
        loc = tuple(item["loc"])
        where = _location(prefix + loc)
        if item["type"] == "extra_forbidden":
            known = _known_fields(model or EnvironmentSpec, loc)
            import difflib  # a bad input only: kept out of every cold start

            guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = (
                f" (did you mean '{guess[0]}'?)"
                if guess
                else f" (allowed: {', '.join(known)})"
                if known
                else ""
            )
            problems.append(f"{where}: unknown field{hint}")
        elif item["type"] == "missing":
            problems.append(f"{where}: required field is missing")
        elif item["type"] == "string_pattern_mismatch":
            pattern = str((item.get("ctx") or {}).get("pattern", ""))
            hint = PATTERN_HINTS.get(pattern, f"must match {pattern}")
            problems.append(f"{where}: {hint} (got {json.dumps(item.get('input'))[:80]})")
        else:
            message = item["msg"].removeprefix("Value error, ")
            value = item.get("input")
            shown = (
                ""
                if isinstance(value, dict | list) or value is None or _is_secret_value(loc)
                else f" (got {json.dumps(value)[:80]})"
            )
            problems.append(f"{where}: {message}{shown}")
    return problems


def json_kind(value: object) -> str:
    """What a JSON value that is not an object is, for an error message (its start shown)."""
    kinds = ((bool, "a boolean"), (int | float, "a number"), (str, "a string"), (list, "an array"))
    kind = next((name for type_, name in kinds if isinstance(value, type_)), None)
    if value is None:
        return "null"
    shown = json.dumps(value, default=str)
    return f"{kind or type(value).__name__} ({shown[:40]}{'…' if len(shown) > 40 else ''})"


def parse_spec(raw: object) -> EnvironmentSpec:
    """Validate a raw spec; raise InvalidSpec naming every bad field. A ``serviceDefaults``
    object is filled into every service first (``with_service_defaults``)."""
    if not isinstance(raw, dict):
        raise InvalidSpec(f"the spec must be a JSON object, got {json_kind(raw)}")
    raw, problems, from_defaults = with_service_defaults(raw)
    try:
        spec = EnvironmentSpec.model_validate(raw)
    except ValidationError as error:
        found = [
            line
            for line in describe_error_items(_without_default_errors(error, from_defaults))
            if line not in problems
        ]
        problems += found
        problems += _pair_problems(raw, problems)
    if problems:
        raise InvalidSpec(
            f"{len(problems)} problem(s) in the spec: " + "; ".join(problems)
        ) from None
    return spec


def with_service_defaults(
    raw: dict[str, Any],
) -> tuple[dict[str, Any], list[str], dict[int, frozenset[str]]]:
    """The spec with its ``serviceDefaults`` filled into each service that does not set the
    field itself (a service's own value replaces the default's whole), the problems of the
    defaults themselves (named ``serviceDefaults.<field>``), and per service index the fields
    it took from them (their errors are the defaults' and are reported once, there)."""
    if SERVICE_DEFAULTS not in raw:
        return raw, [], {}
    spec = {key: value for key, value in raw.items() if key != SERVICE_DEFAULTS}
    defaults = raw[SERVICE_DEFAULTS]
    if defaults is None:
        return spec, [], {}
    if not isinstance(defaults, dict):
        return spec, [f"{SERVICE_DEFAULTS}: must be an object of service fields"], {}
    problems: list[str] = []
    if "name" in defaults:
        problems.append(f"{SERVICE_DEFAULTS}.name: each service names itself (services[].name)")
        defaults = {key: value for key, value in defaults.items() if key != "name"}
    placeholder = {"name": "defaults", "image": "defaults", "port": 1}
    try:
        Service.model_validate({**placeholder, **defaults})
    except ValidationError as error:
        # A check across fields (cpu with memory, ...) is made on each service, with its own
        # values: the placeholder's would be no one's.
        fields = [item for item in error.errors(include_url=False) if item["loc"]]
        problems += describe_error_items(fields, Service, (SERVICE_DEFAULTS,))
    services = spec.get("services")
    taken: dict[int, frozenset[str]] = {}
    if isinstance(services, list):
        filled: list[Any] = []
        for index, service in enumerate(services):
            if isinstance(service, dict):
                taken[index] = frozenset(defaults) - frozenset(service)
                filled.append({**defaults, **service})
            else:
                filled.append(service)
        spec["services"] = filled
    return spec, problems, taken


def _without_default_errors(
    error: ValidationError, from_defaults: dict[int, frozenset[str]]
) -> list[ErrorDetails]:
    """``error``'s errors without those of fields a service took from serviceDefaults."""
    return [
        item
        for item in error.errors(include_url=False)
        if not (
            len(item["loc"]) >= 3
            and item["loc"][0] == "services"
            and isinstance(item["loc"][1], int)
            and item["loc"][2] in from_defaults.get(item["loc"][1], frozenset())
        )
    ]


def normalize(spec: EnvironmentSpec, *, partition: str, account_id: str) -> EnvironmentSpec:
    """Fill the defaults that depend on the account (the workshop's role names)."""
    role = f"arn:{partition}:iam::{account_id}:role/"
    return spec.model_copy(
        update={
            "executionRoleArn": spec.executionRoleArn or role + DEFAULT_EXECUTION_ROLE,
            "taskRoleArn": spec.taskRoleArn or role + DEFAULT_TASK_ROLE,
        }
    )


#: The state form's values shared by the services (``state_form``): a field's most common value,
#: given once at the top level instead of in each service that has it.
SERVICE_DEFAULTS = "serviceDefaults"
#: Never shared: what every service states (the required fields), and logRetentionDays, whose
#: absence means something of its own (the top-level value) that a shared value would hide.
_NOT_SHARED = frozenset({"name", "image", "port", "logRetentionDays"})


def state_form(spec: EnvironmentSpec) -> dict[str, Any]:
    """The spec as the workflow carries it from state to state: every top-level field (Choice
    states and the teardown input read them: tags and logRetentionDays too, at their
    defaults), each service without the fields left at their
    defaults (every Lambda parses the services with ``Service``, which fills them in again), and
    ``serviceDefaults``: the value of a field that several services repeat, given once
    (``expand_state`` puts it back in each service that omits it). A 200-service spec whose
    services use every field with the same sidecar, health check, overrides ... carries each
    of those once. Each service's entry stays a valid ``Service`` on its own (name, image, port
    and what differs: the teardown input reads the names from it)."""
    state = spec.model_dump(mode="json", exclude={"services"})
    compact = [_service_state(s) for s in spec.services]
    defaults = _model_defaults()
    shared = _shared_values(compact, defaults)
    state["services"] = [
        _without_shared(service, entry, shared, defaults)
        for service, entry in zip(spec.services, compact, strict=True)
    ]
    state[SERVICE_DEFAULTS] = shared
    return state


def _size(value: Any) -> int:
    return len(json.dumps(value))


def _model_defaults() -> dict[str, Any]:
    """Each service field's default as the state form writes it (JSON)."""
    return Service(name="x", image="x", port=1).model_dump(mode="json")


def _shared_values(compact: list[dict[str, Any]], defaults: dict[str, Any]) -> dict[str, Any]:
    """Per field, its most common value if giving it once saves bytes: the services with that
    value omit it, those at the model's default then state the default."""
    shared: dict[str, Any] = {}
    fields = {key for entry in compact for key in entry} - _NOT_SHARED
    for key in sorted(fields):
        counts: dict[str, int] = {}
        for entry in compact:
            if key in entry:
                text = json.dumps(entry[key], sort_keys=True)
                counts[text] = counts.get(text, 0) + 1
        text, count = max(counts.items(), key=lambda item: (item[1], item[0]))
        absent = sum(1 for entry in compact if key not in entry)
        pair = len(key) + 4  # "key": value,
        saved = (count - 1) * (pair + len(text)) - absent * (pair + _size(defaults[key]))
        if count > 1 and saved > 0:
            shared[key] = json.loads(text)
    return shared


def _without_shared(
    service: Service, entry: dict[str, Any], shared: dict[str, Any], defaults: dict[str, Any]
) -> dict[str, Any]:
    """A service's state entry without the shared values it has, with the defaults it has where
    a shared value would stand in; its own full entry if that would not be the same service or
    not a valid one on its own."""
    if not shared:
        return entry
    slim = {
        key: value
        for key, value in entry.items()
        if key not in shared
        or json.dumps(value, sort_keys=True) != json.dumps(shared[key], sort_keys=True)
    }
    slim |= {key: defaults[key] for key in shared if key not in entry}
    try:
        alone_ok = Service.model_validate(slim) is not None
        same = Service.model_validate({**shared, **slim}) == service
    except ValueError:  # pydantic's ValidationError: not valid without the shared values
        alone_ok = same = False
    return slim if alone_ok and same else entry


def expand_state(spec_state: Any) -> Any:
    """The state form back to the spec's form: ``serviceDefaults`` filled into every service
    that omits the field (the handlers' inputs parse it so; see ``state_form``). Anything else
    is returned as given."""
    if not isinstance(spec_state, dict) or SERVICE_DEFAULTS not in spec_state:
        return spec_state
    state = dict(spec_state)
    shared = state.pop(SERVICE_DEFAULTS) or {}
    services = state.get("services")
    if shared and isinstance(services, list):
        state["services"] = expand_services(services, shared)
    return state


def expand_services(services: list[Any], shared: dict[str, Any]) -> list[Any]:
    return [{**shared, **s} if isinstance(s, dict) else s for s in services]


def _service_state(service: Service) -> dict[str, Any]:
    state = service.model_dump(mode="json", exclude_defaults=True)
    # null is also the default of a service's logRetentionDays: set, it means "never expire"
    # (unset: the top-level value), so it is kept when the spec sets it.
    if "logRetentionDays" in service.model_fields_set and service.logRetentionDays is None:
        state["logRetentionDays"] = None
    if not state.get("overrides", True):
        state.pop("overrides")
    return state


def json_schema() -> dict[str, Any]:
    schema = EnvironmentSpec.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    # serviceDefaults (parse_spec fills it into the services before the model sees them): any
    # field of a service but its name, none required.
    service = schema["$defs"]["Service"]
    schema["$defs"]["ServiceDefaults"] = {
        "additionalProperties": False,
        "description": (
            "Values every service gets for the fields it does not set itself (a service's own"
            " value replaces the default's whole): any service field but name."
        ),
        "properties": {k: v for k, v in service["properties"].items() if k != "name"},
        "title": "ServiceDefaults",
        "type": "object",
    }
    schema["properties"][SERVICE_DEFAULTS] = {"$ref": "#/$defs/ServiceDefaults"}
    return schema


if __name__ == "__main__":  # pragma: no cover - used by `make schema`
    json.dump(json_schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
