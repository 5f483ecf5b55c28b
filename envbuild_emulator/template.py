"""Read template.yaml as the emulator needs it: SAM resources with the intrinsics it uses resolved.

Supports the subset envbuild's template uses: !Ref (parameters, pseudo parameters, resources),
!Sub (string and list form), !GetAtt <Function>.Arn, !Join, !If / !Equals on parameter values.
Anything else raises, naming the construct, so a template change cannot be silently misread.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SHORT_TAGS = (
    "Ref",
    "Sub",
    "GetAtt",
    "Join",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Select",
    "Split",
    "FindInMap",
    "ImportValue",
    "GetAZs",
    "Base64",
    "Condition",
)


class _Loader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation short tags (!Sub …) into their long form."""


def _construct(tag: str):  # type: ignore[no-untyped-def]
    def build(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        key = "Ref" if tag == "Ref" else "Condition" if tag == "Condition" else f"Fn::{tag}"
        return {key: value}

    return build


for _tag in SHORT_TAGS:
    _Loader.add_constructor(f"!{_tag}", _construct(_tag))


#: (path, mtime, size) -> the parsed template: reading template.yaml takes ~0.2 s, and every
#: emulator (one per test) reads it. Callers get a deep copy, so they may change theirs.
_LOADED: dict[tuple[str, int, int], dict[str, Any]] = {}


def load_yaml(path: Path) -> dict[str, Any]:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    cached = _LOADED.get(key)
    if cached is None:
        with path.open() as handle:
            data = yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a template")
        cached = _LOADED[key] = data
    return copy.deepcopy(cached)


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str
    arn: str
    code_uri: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]


@dataclass(frozen=True)
class StateMachine:
    logical_id: str
    name: str
    definition: str
    event_rules: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Template:
    """The parts of template.yaml that the emulator deploys, resolved for one account and region."""

    path: Path
    raw: dict[str, Any]
    account_id: str
    region: str
    partition: str = "aws"
    stack_name: str = "envbuild"

    def __post_init__(self) -> None:
        self.root = self.path.parent
        self.parameters = {
            name: str(spec.get("Default", ""))
            for name, spec in (self.raw.get("Parameters") or {}).items()
        }
        self.resources: dict[str, Any] = self.raw.get("Resources") or {}
        self.globals: dict[str, Any] = (self.raw.get("Globals") or {}).get("Function", {})

    # -- intrinsic functions ------------------------------------------------------------------
    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
        }

    def physical_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"

    def function_arn(self, logical_id: str) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account_id}:function:{self.physical_name(logical_id)}"

    def state_machine_arn(self, logical_id: str) -> str:
        return (
            f"arn:{self.partition}:states:{self.region}:{self.account_id}"
            f":stateMachine:{self.physical_name(logical_id)}"
        )

    def ref(self, name: str) -> Any:
        if name in self.pseudo():
            return self.pseudo()[name]
        if name in self.parameters:
            param = (self.raw.get("Parameters") or {})[name]
            if param.get("Type") == "CommaDelimitedList":
                value = self.parameters[name]
                return list(value.split(",")) if value else [""]
            return self.parameters[name]
        if name in self.resources:
            if self.resources[name].get("Type") == "AWS::Serverless::StateMachine":
                return self.state_machine_arn(name)  # Ref of a state machine is its ARN
            return self.physical_name(name)
        raise KeyError(
            f"!Ref {name}: not a parameter, pseudo parameter or resource of {self.path.name}"
        )

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise KeyError(f"!GetAtt {logical_id}.{attribute}: no such resource")
        if resource["Type"] == "AWS::Serverless::Function" and attribute == "Arn":
            return self.function_arn(logical_id)
        return f"arn:{self.partition}:emulated:{self.region}:{self.account_id}:{self.physical_name(logical_id)}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.get_att(*arg)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(item) for item in self.resolve(items))
            if key == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.condition(condition) else when_false)
            if key == "Fn::Equals":
                left, right = self.resolve(arg)
                return left == right
            if key.startswith("Fn::"):
                raise NotImplementedError(
                    f"the emulator does not resolve {key} (in {self.path.name})"
                )
        return {key: self.resolve(item) for key, item in value.items()}

    def condition(self, name: str) -> bool:
        expression = (self.raw.get("Conditions") or {})[name]
        return bool(self.resolve(expression))

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!][^}]*)\}", replace, text)

    # -- resources ----------------------------------------------------------------------------
    def tables(self) -> dict[str, dict[str, Any]]:
        """Physical name -> resolved properties of each AWS::DynamoDB::Table."""
        return {
            self.physical_name(logical_id): self.resolve(resource.get("Properties", {}))
            for logical_id, resource in self.resources.items()
            if resource.get("Type") == "AWS::DynamoDB::Table"
        }

    def functions(self) -> list[Function]:
        found = []
        global_env = self.resolve(self.globals.get("Environment", {}).get("Variables", {}))
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            props = resource.get("Properties", {})
            env = dict(global_env)
            env.update(self.resolve(props.get("Environment", {}).get("Variables", {})))
            code_uri = props.get("CodeUri", self.globals.get("CodeUri"))
            found.append(
                Function(
                    logical_id=logical_id,
                    name=self.physical_name(logical_id),
                    arn=self.function_arn(logical_id),
                    code_uri=(self.root / str(code_uri)).resolve(),
                    handler=str(props.get("Handler", self.globals.get("Handler"))),
                    timeout=int(props.get("Timeout", self.globals.get("Timeout", 3))),
                    memory=int(props.get("MemorySize", self.globals.get("MemorySize", 128))),
                    environment={key: str(value) for key, value in env.items()},
                )
            )
        return found

    def state_machines(self) -> list[StateMachine]:
        found = []
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != "AWS::Serverless::StateMachine":
                continue
            props = resource.get("Properties", {})
            definition = (self.root / props["DefinitionUri"]).read_text()
            substitutions = self.resolve(props.get("DefinitionSubstitutions", {}))
            for key, value in substitutions.items():
                definition = definition.replace("${" + key + "}", str(value))
            leftover = re.findall(r"\$\{[^}]+\}", definition)
            if leftover:
                raise ValueError(
                    f"{props['DefinitionUri']}: unresolved substitutions {sorted(set(leftover))}"
                )
            json.loads(definition)  # a broken definition fails here, not in the middle of a build
            rules = [
                self.resolve(event.get("Properties", {}))
                for event in (props.get("Events") or {}).values()
                if event.get("Type") in ("EventBridgeRule", "CloudWatchEvent")
            ]
            found.append(
                StateMachine(logical_id, self.physical_name(logical_id), definition, rules)
            )
        return found
