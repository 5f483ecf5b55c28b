"""The IAM proof: the functions' policies in template.yaml against the AWS calls they made.

The workflow tests run the real state machines on the emulator, which records every AWS API call
each Lambda makes (envbuild_emulator/calls.py). tests/test_iam_proof.py (run after every other
test, see conftest.py) then checks, per function:

* every action its calls need is allowed (the calls themselves, the actions AWS authorizes on the
  caller's behalf, TagResource for tag-on-create), and
* every allowed action was needed by some call, unless a ``# iam-unexercised: <why>`` comment sits
  on the action's line, directly above it, or directly above its statement.

Only inline ``Statement`` policies are checkable: a function using a SAM policy template or a
managed policy fails the parse, naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from envbuild_emulator.calls import FunctionCalls

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
