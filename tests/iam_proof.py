"""The IAM proof: the functions' policies in template.yaml against the AWS calls they made, on the
resources they made them on.

The workflow tests run the real state machines on the emulator, which records every AWS API call
each Lambda makes (envbuild_emulator/calls.py). tests/test_iam_proof.py (run after every other
test, see conftest.py) then checks, per function:

* every action its calls need is allowed (the calls themselves, the actions AWS authorizes on the
  caller's behalf, TagResource for tag-on-create), and
* every allowed action was needed by some call, unless a ``# iam-unexercised: <why>`` comment sits
  on the action's line, directly above it, or directly above its statement, and
* every request, on the ARNs IAM authorizes it against (Service Authorization Reference), with the
  resource's tags and the request's condition keys, is allowed by the function's statements as IAM
  evaluates them (``resolve_request``, ``denied_requests``; tools/iam_policy.py).

Only inline ``Statement`` policies are checkable: a function using a SAM policy template or a
managed policy fails the parse, naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from envbuild_emulator.calls import (
    ON_CALLERS_BEHALF,
    PASSED_ROLES,
    FunctionCalls,
    iam_action,
    implied_by_request,
)
from tools import iam_policy

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
WORKFLOW_TESTS = ROOT / "tests" / "workflow"
MARKER = re.compile(r"#\s*iam-unexercised:\s*(\S.*)$")


class UncheckablePolicy(ValueError):
    """A policy the proof cannot read (not an inline statement)."""


@dataclass(frozen=True)
class Grant:
    function: str
    action: str
    sid: str
    line: int  # 1-based line of the action in template.yaml
    resources: tuple[str, ...]  # "*" or the services of the scoped resources ("?" = parameter)
    unexercised: str | None  # the reason of an iam-unexercised marker
    statement_comment: str  # the comment block above the statement ("" if none)


# --- reading template.yaml (nodes keep their line numbers; comments are read from the text) ----
def _get(node: yaml.Node, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _comment_block_above(lines: list[str], index: int) -> list[str]:
    block: list[str] = []
    i = index - 1
    while i >= 0 and lines[i].strip().startswith("#"):
        block.insert(0, lines[i].strip())
        i -= 1
    return block


def _marker(texts: list[str]) -> str | None:
    for text in texts:
        found = MARKER.search(text)
        if found:
            return found.group(1).strip()
    return None


def _resource_services(node: yaml.Node, types: dict[str, str]) -> list[str]:
    """The services of a statement's Resource: "*", an ARN's service, a resource type's service,
    or "?" (a parameter: the proof cannot tell)."""
    if isinstance(node, yaml.SequenceNode):
        if node.tag == "!If":  # [condition, then, else]
            return [s for branch in node.value[1:] for s in _resource_services(branch, types)]
        return [s for item in node.value for s in _resource_services(item, types)]
    if isinstance(node, yaml.ScalarNode):
        value = str(node.value)
        if node.tag == "!GetAtt":
            logical_id = value.split(".", 1)[0]
            return (
                [types.get(logical_id, "?").split("::")[1].lower()]
                if logical_id in types
                else ["?"]
            )
        if node.tag == "!Ref":
            return ["?"]
        if value == "*":
            return ["*"]
        parts = re.sub(r"\$\{[^}]*\}", "X", value).split(":")
        return [parts[2]] if len(parts) > 2 and parts[0] == "arn" else ["?"]
    return ["?"]


def function_policies(text: str) -> dict[str, list[Grant]]:
    """Every AWS::Serverless::Function of a template -> the actions its policies allow."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines = text.splitlines()
    resources = _get(root, "Resources")
    assert isinstance(resources, yaml.MappingNode), "template has no Resources"
    types = {
        k.value: str(t.value)
        for k, v in resources.value
        if isinstance((t := _get(v, "Type")), yaml.ScalarNode)
    }
    policies: dict[str, list[Grant]] = {}
    for key, resource in resources.value:
        if types.get(key.value) != "AWS::Serverless::Function":
            continue
        function = str(key.value)
        grants = policies[function] = []
        policy_list = _get(_get(resource, "Properties") or resource, "Policies")
        if policy_list is None:
            continue
        items = policy_list.value if isinstance(policy_list, yaml.SequenceNode) else [policy_list]
        for policy in items:
            statements = _get(policy, "Statement")
            if statements is None:
                raise UncheckablePolicy(
                    f"{function}: policy at template.yaml line {policy.start_mark.line + 1} is not an "
                    "inline Statement (a SAM policy template or managed policy): write it as "
                    "inline statements so the IAM proof can check it"
                )
            for statement in statements.value:
                grants.extend(_statement_grants(function, statement, lines, types))
    return policies


def _statement_grants(
    function: str, statement: yaml.Node, lines: list[str], types: dict[str, str]
) -> list[Grant]:
    effect = _get(statement, "Effect")
    if effect is None or effect.value != "Allow":
        return []
    sid_node = _get(statement, "Sid")
    sid = str(sid_node.value) if sid_node is not None else "(no Sid)"
    statement_comments = _comment_block_above(lines, statement.start_mark.line)
    resource = _get(statement, "Resource")
    services = tuple(_resource_services(resource, types)) if resource is not None else ("?",)
    action_node = _get(statement, "Action")
    nodes: list[yaml.Node] = []
    if isinstance(action_node, yaml.SequenceNode):
        nodes = list(action_node.value)
    elif isinstance(action_node, yaml.ScalarNode) and action_node.value:
        nodes = [action_node]
    grants = []
    for node in nodes:
        line = node.start_mark.line
        texts = [lines[line], *_comment_block_above(lines, line), *statement_comments]
        grants.append(
            Grant(
                function=function,
                action=str(node.value),
                sid=sid,
                line=line + 1,
                resources=services,
                unexercised=_marker(texts),
                statement_comment=" ".join(statement_comments),
            )
        )
    return grants


# --- the checks ---------------------------------------------------------------------------------
def allows(grants: list[Grant], action: str) -> bool:
    """Whether an Allow of ``grants`` names ``action`` (IAM actions are case-insensitive)."""
    return any(fnmatchcase(action.lower(), grant.action.lower()) for grant in grants)


def missing_permissions(
    policies: dict[str, list[Grant]], required: dict[str, dict[str, str]]
) -> list[str]:
    """One message per function whose calls need an action its policy does not allow, with the
    statement to add."""
    messages = []
    for function, actions in sorted(required.items()):
        if function not in policies:
            messages.append(
                f"{function} made AWS calls but is no AWS::Serverless::Function in template.yaml"
            )
            continue
        absent = {a: why for a, why in actions.items() if not allows(policies[function], a)}
        if not absent:
            continue
        listed = "\n".join(f"            - {a}  # {why}" for a, why in sorted(absent.items()))
        messages.append(
            f"{function} is not allowed {', '.join(sorted(absent))}. Add to its Policies in "
            f"template.yaml:\n        - Statement:\n            - Sid: <Why>\n"
            f"              Effect: Allow\n              Action:\n{listed}\n"
            '              Resource: <the ARN the call acts on; "*" only if the action has no '
            "resource type, with a comment saying so>"
        )
    return messages


def unexercised_permissions(
    policies: dict[str, list[Grant]], required: dict[str, dict[str, str]]
) -> list[str]:
    """Allowed actions no recorded call needed (and markers on actions that were needed)."""
    messages = []
    for function, grants in sorted(policies.items()):
        needed = required.get(function, {})
        for grant in grants:
            used = [a for a in needed if fnmatchcase(a.lower(), grant.action.lower())]
            where = f"{function} {grant.action} (statement {grant.sid}, template.yaml line {grant.line})"
            if not used and grant.unexercised is None:
                messages.append(
                    f"{where} is allowed but no test exercised it: remove it, or put "
                    "'# iam-unexercised: <why it is needed>' on the line above it"
                )
            if used and grant.unexercised is not None:
                messages.append(
                    f"{where} is marked iam-unexercised but was exercised "
                    f"({needed[used[0]]}): remove the marker"
                )
    return messages


def resource_mismatches(policies: dict[str, list[Grant]]) -> list[str]:
    """Actions whose statement's resources are all of another service (allowed on nothing)."""
    messages = []
    for function, grants in sorted(policies.items()):
        for grant in grants:
            if "*" in grant.resources or "?" in grant.resources:
                continue
            prefix = grant.action.split(":", 1)[0]
            if prefix not in grant.resources:
                messages.append(
                    f"{function} {grant.action} (statement {grant.sid}) names only "
                    f"{', '.join(sorted(set(grant.resources)))} resources: it allows nothing"
                )
    return messages


# --- the session's recording --------------------------------------------------------------------
@dataclass
class SessionRecording:
    """The calls of every emulator of the session, and whether all workflow tests ran and passed
    (the unexercised check is only meaningful then)."""

    calls: FunctionCalls = field(default_factory=FunctionCalls)
    collected: set[str] = field(default_factory=set)  # workflow test node ids, before -k/-m
    deselected: set[str] = field(default_factory=set)
    passed: set[str] = field(default_factory=set)
    not_passed: dict[str, str] = field(default_factory=dict)
    node_id_arguments: bool = False

    @staticmethod
    def is_workflow(nodeid: str) -> bool:
        return nodeid.startswith("tests/workflow/")

    def incomplete_reason(self) -> str | None:
        files_on_disk = {f"tests/workflow/{p.name}" for p in WORKFLOW_TESTS.glob("test_*.py")}
        files_collected = {nodeid.split("::", 1)[0] for nodeid in self.collected}
        if files_on_disk - files_collected:
            return "workflow test files not collected: " + ", ".join(
                sorted(files_on_disk - files_collected)
            )
        if self.node_id_arguments:
            return "tests were selected by node id (file::test): some workflow tests did not run"
        if self.deselected:
            return f"{len(self.deselected)} workflow tests deselected (-k / -m)"
        if self.not_passed:
            first = sorted(self.not_passed.items())[:3]
            return "workflow tests did not pass: " + ", ".join(f"{n} ({o})" for n, o in first)
        missing = self.collected - self.passed
        if missing:
            return f"{len(missing)} workflow tests did not run (e.g. {sorted(missing)[0]})"
        return None


# --- the proof with resources: each request's ARNs, tags and condition context ------------------
# A request is authorized against the ARN(s) of the resource types its action takes (Service
# Authorization Reference, tools/iam_policy.py), built from the request's parameters in the
# emulated account and region. A part the recording cannot know (an id in a REST path or query
# string, a resource the call creates) stays a wildcard: the request is then checked against "some
# resource of that type". The tags of an existing resource are read from the emulated account
# before the request runs (a delete still sees them).
@dataclass(frozen=True, order=True)
class Authorization:
    action: str
    resource: str  # an ARN, or an ARN glob where a part is unknown
    context: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    why: str = ""
    where: tuple[str, str, str] = ("aws", "us-east-1", "111122223333")  # partition, region, account

    @property
    def exact(self) -> bool:
        return "*" not in self.resource


def _last(value: str, marker: str) -> str:
    """A name from a name or an ARN (``cluster/<name>``, ``service/<cluster>/<name>``)."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") or marker in value else value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _request_tags(parameters: Mapping[str, Any]) -> dict[str, str]:
    tags = parameters.get("Tags") or parameters.get("tags") or {}
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {
        str(t.get("Key", t.get("key"))): str(t.get("Value", t.get("value")))
        for t in tags
        if isinstance(t, dict)
    }


def _arn_values(service: str, parameters: Mapping[str, Any]) -> dict[str, list[str]]:
    """ARN-format variables -> the values a request's parameters give (several for a batch)."""
    p = parameters
    values: dict[str, list[str]] = {}
    if service == "servicediscovery":
        values["NamespaceId"] = _strings(p.get("NamespaceId") or p.get("Id"))
        values["ServiceId"] = _strings(p.get("ServiceId") or p.get("Id"))
    elif service == "ecs":
        clusters = _strings(p.get("clusters")) or _strings(p.get("cluster")) or ["default"]
        values["ClusterName"] = [_last(c, "cluster/") for c in clusters]
        services = _strings(p.get("services")) or _strings(p.get("service") or p.get("serviceName"))
        values["ServiceName"] = [_last(s, "/") for s in services]
        values["TaskId"] = [_last(t, "/") for t in _strings(p.get("tasks") or p.get("task"))]
        definition = str(p.get("taskDefinition") or "")
        if definition:
            family, _, revision = definition.rsplit("/", 1)[-1].partition(":")
            values["TaskDefinitionFamilyName"] = [family]
            values["TaskDefinitionRevisionNumber"] = [revision] if revision else []
        elif isinstance(p.get("family"), str):
            values["TaskDefinitionFamilyName"] = [p["family"]]
    elif service == "logs":
        values["LogGroupName"] = _strings(p.get("logGroupName"))
        values["LogStreamName"] = _strings(p.get("logStreamName"))
    elif service == "ssm":
        names = _strings(p.get("Names")) or _strings(
            p.get("Name") or p.get("ResourceId") or p.get("Path")
        )
        values["ParameterNameWithoutLeadingSlash"] = [n.lstrip("/").rstrip("/") for n in names]
    elif service == "dynamodb":
        values["TableName"] = _strings(p.get("TableName"))
    return {k: v for k, v in values.items() if v}


def _arns(
    action: str, service: str, parameters: Mapping[str, Any], where: dict[str, str]
) -> list[str]:
    """The ARNs (globs where unknown) ``action`` is authorized against for this request."""
    given = parameters.get("resourceArn") or parameters.get("ResourceARN")
    info = iam_policy.action_info(action)
    if isinstance(given, str):  # TagResource / ListTagsForResource name their resource
        return [given.removesuffix(":*")] if info.resource_types else ["*"]
    source = parameters.get("PolicySourceArn")
    if isinstance(source, str) and action == "iam:SimulatePrincipalPolicy":
        return [source]  # the role (user, group) whose policies are simulated
    execution = parameters.get("executionArn")
    if isinstance(execution, str) and action.startswith("states:"):  # DescribeExecution & co.
        return [execution]
    types = [rt for rt in info.resource_types if rt.required] or []
    if not types:
        return ["*"]
    values = _arn_values(service, parameters)
    arns = []
    for rt in types:
        variables = [v for v in iam_policy.VARIABLE.findall(rt.arn) if v not in where]
        batch = next((v for v in variables if len(values.get(v, ())) > 1), None)
        for item in values.get(batch, [""]) if batch else [""]:
            filled = {v: values[v][0] for v in variables if values.get(v) and v != batch}
            if batch:
                filled[batch] = item
            arns.append(iam_policy.arn_glob(rt.arn, {**where, **filled}))
    return arns


def _tags_of(arn: str, account: str, region: str) -> dict[str, str] | None:
    """The tags of an existing resource of the emulated account (None: none found)."""
    from moto.backends import get_backend

    service = arn.split(":")[2]
    try:
        if service == "servicediscovery":
            backend = get_backend("servicediscovery")[account][region]
            resource_id = arn.rsplit("/", 1)[-1]
            if resource_id not in backend.services and resource_id not in backend.namespaces:
                return None  # gone (or never made): no tags to condition on
            return dict(backend.tagger.get_tag_dict_for_resource(arn))
        if service == "ecs":
            tags = get_backend("ecs")[account][region].list_tags_for_resource(arn)
            return {t["key"]: t["value"] for t in tags or []}
        if service == "logs":
            name = arn.split(":log-group:", 1)[1]
            return dict(get_backend("logs")[account][region].list_tags_log_group(name))
        if service == "ssm":
            name = "/" + arn.split(":parameter/", 1)[1]
            backend = get_backend("ssm")[account][region]
            return dict(backend.list_tags_for_resource("Parameter", name))
    except Exception:  # no such resource (yet): no tags to condition on
        return None
    return None


@dataclass(frozen=True, order=True)
class Unresolved:
    """A request the resolver could not turn into authorizations (reported by the proof)."""

    service: str
    operation: str
    error: str


def resolve_request(
    service: str, operation: str, parameters: Mapping[str, Any], account: str, region: str
) -> list[Authorization | Unresolved]:
    """Every authorization a recorded request needs (its own action, and those it implies). It
    runs inside the emulated request: an error is kept as Unresolved, never raised there."""
    try:
        return list(_resolve(service, operation, parameters, account, region))
    except Exception as error:  # reported by denied_requests, not by the workflow under test
        return [Unresolved(service, operation, f"{type(error).__name__}: {error}")]


def _resolve(
    service: str, operation: str, parameters: Mapping[str, Any], account: str, region: str
) -> list[Authorization]:
    where = {
        "Partition": "aws",
        "Region": region or iam_policy.EXAMPLE["Region"],
        "Account": account or iam_policy.EXAMPLE["Account"],
    }
    at = (where["Partition"], where["Region"], where["Account"])
    action = iam_action(service, operation)
    request_tags = _request_tags(parameters)
    base: dict[str, str | tuple[str, ...]] = {}
    if request_tags:
        base["aws:TagKeys"] = tuple(sorted(request_tags))
        base.update({f"aws:RequestTag/{k}": v for k, v in request_tags.items()})
    if service == "ssm" and "Overwrite" in parameters:
        base["ssm:Overwrite"] = str(bool(parameters["Overwrite"])).lower()
    if service == "application-autoscaling":  # the service's own condition keys (SAR)
        for key, parameter in (
            ("application-autoscaling:service-namespace", "ServiceNamespace"),
            ("application-autoscaling:scalable-dimension", "ScalableDimension"),
        ):
            if parameter in parameters:
                base[key] = str(parameters[parameter])
    found: list[Authorization] = []
    try:
        arns = _arns(action, service, parameters, where)
    except iam_policy.UnknownAction:
        arns = ["*"]
    for arn in arns:
        context = dict(base)
        tags = _tags_of(arn, where["Account"], where["Region"]) if "*" not in arn else None
        if tags is None and "*" not in arn and action in GONE_WHEN_DENIED:
            context[ABSENT] = "true"  # the resource no longer exists when the request is made
        for key, value in (tags or {}).items():
            context[f"aws:ResourceTag/{key}"] = value
            if service == "ecs":
                context[f"ecs:ResourceTag/{key}"] = value
        found.append(Authorization(action, arn, tuple(sorted(context.items())), operation, at))
    implied = implied_by_request(service, operation, parameters)
    for other in ON_CALLERS_BEHALF.get(action, ()):
        implied.setdefault(other, f"on the caller's behalf by {action}")
    for other, why in implied.items():
        context = dict(base)
        if other == "iam:PassRole":
            context["iam:PassedToService"] = "ecs-tasks.amazonaws.com"
            roles = [parameters.get(n) for n in PASSED_ROLES.get((service, operation), ())]
            targets = [r for r in roles if isinstance(r, str) and r]
        elif other.endswith(":TagResource") and service == "ecs" and operation == "RunTask":
            cluster = _arn_values(service, parameters)["ClusterName"][0]
            targets = [f"arn:aws:ecs:{where['Region']}:{where['Account']}:task/{cluster}/*"]
        elif other.endswith((":TagResource", ":AddTagsToResource")):
            # the resource the request creates: its own resource where the tag action takes it
            prefix = other.split(":", 1)[0]
            targets = [a for a in arns if a != "*" and iam_policy.resource_types_of(other, a)]
            if not targets and not iam_policy.action_info(other).resource_types:
                targets = ["*"]
            if not targets:
                targets = [f"arn:aws:{prefix}:{where['Region']}:{where['Account']}:*"]
        else:
            info = iam_policy.action_info(other)
            targets = [
                iam_policy.arn_glob(rt.arn, where) for rt in info.resource_types if rt.required
            ]
            targets = targets or ["*"]
        found.extend(
            Authorization(other, t, tuple(sorted(context.items())), why, at) for t in targets
        )
    return found


def function_statements(
    text: str, where: tuple[str, str, str] = ("aws", "us-east-1", "111122223333")
) -> dict[str, list[iam_policy.Statement]]:
    """Each function's and state machine's Allow statements (resources as globs), deployed in
    ``where`` (partition, region, account)."""
    by_owner: dict[str, list[iam_policy.Statement]] = {}
    for statement in iam_policy.template_statements(text, iam_policy.pseudo_parameters(*where)):
        by_owner.setdefault(statement.owner, []).append(statement)
    return by_owner


#: Deletes whose permission is conditioned on the resource's tags and whose callers treat an
#: AccessDenied on a resource that no longer exists as "already gone" (steps/teardown.py
#: ``_gone_after``; tests/unit/test_teardown.py). AWS denies such a request (no tags to match):
#: e.g. the SDK's own retry after a lost response of a delete that went through. The proof lets
#: that denial pass and counts it (``absent_denials``).
GONE_WHEN_DENIED = frozenset(
    {
        "logs:DeleteLogGroup",
        "servicediscovery:DeleteService",
        "servicediscovery:DeleteNamespace",
        "servicediscovery:DeregisterInstance",
    }
)
ABSENT = "envbuild:resourceAbsent"


def denied_requests(text: str, resolved: Mapping[str, set[Any]]) -> list[str]:
    """One message per recorded authorization no statement of the function's policy in
    template ``text`` allows (the template deployed where the request was made)."""
    deployed: dict[tuple[str, str, str], dict[str, list[iam_policy.Statement]]] = {}
    messages = []
    for function, items in sorted(resolved.items()):
        for failed in sorted(i for i in items if isinstance(i, Unresolved)):
            messages.append(
                f"{function}: {failed.service} {failed.operation} could not be resolved to "
                f"resources ({failed.error})"
            )
        for item in sorted(i for i in items if isinstance(i, Authorization)):
            if item.where not in deployed:
                deployed[item.where] = function_statements(text, item.where)
            own = deployed[item.where].get(function, [])
            request = iam_policy.Request(item.action, item.resource, dict(item.context))
            if dict(item.context).get(ABSENT) == "true":
                continue  # denied on AWS and handled as "already gone" (GONE_WHEN_DENIED)
            if not iam_policy.allowing_statements(own, request):
                tags = {k: v for k, v in item.context if k.startswith("aws:ResourceTag/")}
                messages.append(
                    f"{function} is denied {item.action} on {item.resource} ({item.why}; "
                    f"resource tags {tags or 'none'}): no statement allows it"
                )
    return messages


# --- the state machines' roles, statically: what their Task states' integrations need ----------
# Step Functions developer guide, "IAM policies for integrated services": a Lambda task needs
# lambda:InvokeFunction on the function; startExecution.sync:2 needs states:StartExecution on the
# state machine, DescribeExecution/StopExecution on its executions and the managed EventBridge
# rule's PutTargets/PutRule/DescribeRule; events:putEvents needs PutEvents on the bus;
# dynamodb:deleteItem / updateItem need DeleteItem / UpdateItem on the table.
SYNC_RULE = "rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"


def _physical(value: Any, types: Mapping[str, str], where: Mapping[str, str], params: Any) -> str:
    """A DefinitionSubstitutions value as CloudFormation would fill it (generated names hold the
    logical id)."""
    p, r, a = where["Partition"], where["Region"], where["Account"]
    if isinstance(value, str):
        return value
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        logical = target[0] if isinstance(target, list) else target.split(".", 1)[0]
        return f"arn:{p}:lambda:{r}:{a}:function:envbuild-{logical}-ABC123"
    if "Ref" in value:
        name = value["Ref"]
        if types.get(name) == "AWS::Serverless::StateMachine":
            return f"arn:{p}:states:{r}:{a}:stateMachine:{name}-ABC123"
        if name in types:
            return f"envbuild-{name}-ABC123"
        return str(params.get(name, {}).get("Default", name))
    if "Fn::Sub" in value:
        return iam_policy.template_glob(value["Fn::Sub"], iam_policy.pseudo_parameters(p, r, a))
    raise ValueError(f"DefinitionSubstitutions value not understood: {value}")


def _task_states(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("Type") == "Task":
            found.append(node)
        for value in node.values():
            found.extend(_task_states(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_task_states(value))
    return found


def state_machine_requests(
    text: str, where: tuple[str, str, str] = ("aws", "us-east-1", "111122223333")
) -> dict[str, list[iam_policy.Request]]:
    """Each state machine -> the requests its role must allow for its Task states."""
    import json

    from samtranslator.yaml_helper import yaml_parse

    p, r, a = where
    at = {"Partition": p, "Region": r, "Account": a}
    template = yaml_parse(text)
    types = {k: v.get("Type", "") for k, v in template["Resources"].items()}
    params = template.get("Parameters", {})
    needed: dict[str, list[iam_policy.Request]] = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::StateMachine":
            continue
        properties = resource["Properties"]
        asl = (ROOT / properties["DefinitionUri"]).read_text(encoding="utf-8")
        for key, value in properties.get("DefinitionSubstitutions", {}).items():
            asl = asl.replace("${" + key + "}", _physical(value, types, at, params))
        requests = needed[name] = []
        for task in _task_states(json.loads(asl)):
            arn = str(task["Resource"])
            args = task.get("Parameters") or task.get("Arguments") or {}
            if ":lambda:" in arn and ":function:" in arn:
                requests.append(iam_policy.Request("lambda:InvokeFunction", arn))
            elif arn.endswith(":states:startExecution.sync:2"):
                machine = str(args["StateMachineArn"])
                executions = machine.replace(":stateMachine:", ":execution:") + ":*"
                requests.append(iam_policy.Request("states:StartExecution", machine))
                for action in ("states:DescribeExecution", "states:StopExecution"):
                    requests.append(iam_policy.Request(action, executions))
                for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
                    requests.append(
                        iam_policy.Request(action, f"arn:{p}:events:{r}:{a}:{SYNC_RULE}")
                    )
            elif arn.endswith(":events:putEvents"):
                for entry in args.get("Entries", []):
                    bus = entry.get("EventBusName", "default")
                    requests.append(
                        iam_policy.Request(
                            "events:PutEvents", f"arn:{p}:events:{r}:{a}:event-bus/{bus}"
                        )
                    )
            elif arn.endswith((":dynamodb:deleteItem", ":dynamodb:updateItem")):
                table = f"arn:{p}:dynamodb:{r}:{a}:table/{args['TableName']}"
                action = "DeleteItem" if arn.endswith("deleteItem") else "UpdateItem"
                requests.append(iam_policy.Request(f"dynamodb:{action}", table))
            else:
                raise ValueError(f"{name}: Task resource {arn} is no integration the proof knows")
    return needed


def resolved_figures(resolved: Mapping[str, set[Any]]) -> str:
    """How much of the recording the proof with resources saw exactly (for the summary line)."""
    items = [i for found in resolved.values() for i in found if isinstance(i, Authorization)]
    exact = sum(i.exact for i in items)
    tagged = sum(any(k.startswith("aws:ResourceTag/") for k, _ in i.context) for i in items)
    unscoped = sum(i.resource == "*" for i in items)
    return (
        f"{len(items)} (function, action, resource, context) authorizations: {exact} on exact "
        f'ARNs ({tagged} with the resource\'s tags), {unscoped} on "*" (no resource type), '
        f"{len(items) - exact - unscoped} on ARNs with an unknown part"
    )
