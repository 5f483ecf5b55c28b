"""Least privilege, proven: template.yaml's function policies against the AWS calls the workflow
tests recorded (tests/iam_proof.py). These run after every other test (conftest.py orders them).

With only part of the workflow tests run (-k, a file, a node id), the recording is partial: the
calls made must still be allowed, but "no test exercised it" would be spurious, so that check
skips, saying why.
"""

from __future__ import annotations

import pytest

from envbuild_emulator.calls import FunctionCalls, calling_as
from tests.iam_proof import (
    TEMPLATE,
    Grant,
    SessionRecording,
    UncheckablePolicy,
    function_policies,
    missing_permissions,
    resource_mismatches,
    unexercised_permissions,
)

pytestmark = pytest.mark.iam_proof


@pytest.fixture(scope="module")
def template_text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def policies(template_text: str) -> dict[str, list[Grant]]:
    return function_policies(template_text)


@pytest.fixture
def required(iam_recording: SessionRecording) -> dict[str, dict[str, str]]:
    recorded = iam_recording.calls.required_actions()
    if not recorded:
        pytest.skip("no workflow test ran in this session: no AWS call was recorded")
    return recorded


def test_every_recorded_call_is_allowed(
    policies: dict[str, list[Grant]], required: dict[str, dict[str, str]]
) -> None:
    problems = missing_permissions(policies, required)
    assert not problems, "\n\n".join(problems)


def test_no_permission_goes_unexercised(
    iam_recording: SessionRecording,
    policies: dict[str, list[Grant]],
    required: dict[str, dict[str, str]],
) -> None:
    reason = iam_recording.incomplete_reason()
    if reason is not None:
        pytest.skip(f"partial recording, unexercised permissions not checked: {reason}")
    problems = unexercised_permissions(policies, required)
    assert not problems, "\n".join(problems)


def test_every_function_was_invoked_by_some_workflow(
    iam_recording: SessionRecording, policies: dict[str, list[Grant]]
) -> None:
    reason = iam_recording.incomplete_reason()
    if reason is not None:
        pytest.skip(f"partial recording: {reason}")
    invoked = set(iam_recording.calls.by_function())
    # ValidateSpecFunction makes no AWS call (so records none): it has no policy to prove. A
    # function whose every action carries an iam-unexercised marker says why no test reaches it.
    to_prove = {
        function
        for function, grants in policies.items()
        if any(grant.unexercised is None for grant in grants)
    }
    assert to_prove <= invoked, sorted(to_prove - invoked)


# --- the checker catches what it must (mutated copies of template.yaml) -----------------------
def _removable(
    policies: dict[str, list[Grant]], required: dict[str, dict[str, str]]
) -> Grant | None:
    """An exercised action that is not the only one of its statement (removing its line keeps
    the YAML valid) and that no other statement of the function allows too."""
    for function, grants in sorted(policies.items()):
        for grant in grants:
            same_statement = [g for g in grants if g.sid == grant.sid]
            elsewhere = [g for g in grants if g.action == grant.action and g.sid != grant.sid]
            exercised = grant.action in required.get(function, {})
            if exercised and len(same_statement) > 1 and not elsewhere:
                return grant
    return None


def test_removing_an_exercised_permission_fails_naming_function_and_action(
    template_text: str,
    policies: dict[str, list[Grant]],
    required: dict[str, dict[str, str]],
) -> None:
    grant = _removable(policies, required)
    assert grant is not None, "no exercised action in a multi-action statement"
    lines = template_text.splitlines(keepends=True)
    del lines[grant.line - 1]
    mutated = function_policies("".join(lines))

    before = missing_permissions(policies, required)
    after = [m for m in missing_permissions(mutated, required) if m not in before]

    assert len(after) == 1, after
    assert after[0].startswith(f"{grant.function} is not allowed {grant.action}")
    assert f"- {grant.action}  # " in after[0]  # the line to add back


def test_adding_an_unused_permission_fails_naming_function_and_action(
    template_text: str,
    policies: dict[str, list[Grant]],
    required: dict[str, dict[str, str]],
) -> None:
    function = "CreateRegistriesFunction"
    anchor = next(g for g in policies[function] if g.action == "servicediscovery:CreateService")
    lines = template_text.splitlines(keepends=True)
    anchor_line = lines[anchor.line - 1]
    indent = anchor_line[: len(anchor_line) - len(anchor_line.lstrip())]
    lines.insert(anchor.line, f"{indent}- servicediscovery:UpdateHttpNamespace\n")
    mutated = function_policies("".join(lines))

    def subject(message: str) -> str:  # "<function> <action>" (line numbers shift)
        return " ".join(message.split()[:2])

    before = {subject(m) for m in unexercised_permissions(policies, required)}
    after = [m for m in unexercised_permissions(mutated, required) if subject(m) not in before]

    assert len(after) == 1, after
    assert after[0].startswith(f"{function} servicediscovery:UpdateHttpNamespace ")
    assert "no test exercised it" in after[0]


def test_a_marker_excuses_an_unexercised_permission_and_must_say_why() -> None:
    text = """
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Sid: Used
              Effect: Allow
              Action:
                - ecs:DescribeServices
                # iam-unexercised: only the first service of an account needs it
                - iam:CreateServiceLinkedRole
                - ecs:DeleteService # iam-unexercised:
              Resource: "*"
"""
    policies = function_policies(text)
    required = {"F": {"ecs:DescribeServices": "called DescribeServices x1"}}
    problems = unexercised_permissions(policies, required)
    # the marker without a reason is no marker
    assert problems == [
        "F ecs:DeleteService (statement Used, template.yaml line 14) is allowed but no test "
        "exercised it: remove it, or put '# iam-unexercised: <why it is needed>' on the line "
        "above it"
    ]
    # a marker on what was exercised is stale
    required["F"]["iam:CreateServiceLinkedRole"] = "called CreateServiceLinkedRole x1"
    stale = unexercised_permissions(policies, required)
    assert any("CreateServiceLinkedRole" in m and "remove the marker" in m for m in stale)


def test_wildcards_and_case_follow_iam() -> None:
    text = """
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: ECS:Describe*
              Resource: "*"
"""
    policies = function_policies(text)
    assert not missing_permissions(policies, {"F": {"ecs:DescribeTasks": "called"}})
    assert missing_permissions(policies, {"F": {"ecs:ListTasks": "called"}})


def test_sam_policy_templates_are_refused_as_uncheckable() -> None:
    text = """
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - DynamoDBCrudPolicy:
            TableName: t
"""
    with pytest.raises(UncheckablePolicy, match=r"F: policy at template.yaml line 7"):
        function_policies(text)


def test_calls_are_attributed_to_the_invocation_and_imply_on_behalf_actions() -> None:
    calls = FunctionCalls()
    calls.record("ecs", "ListClusters")  # outside any invocation: not attributed
    with calling_as("CreateNamespaceFunction"):
        calls.record("servicediscovery", "CreatePrivateDnsNamespace", {"Tags": [{"Key": "k"}]})
        calls.record("ecs", "RegisterTaskDefinition", {"family": "f", "executionRoleArn": "r"})
    with calling_as("StartFunction"):
        calls.record("stepfunctions", "StartExecution")
    required = calls.required_actions()
    assert set(required) == {"CreateNamespaceFunction", "StartFunction"}
    assert set(required["CreateNamespaceFunction"]) == {
        "servicediscovery:CreatePrivateDnsNamespace",
        "servicediscovery:TagResource",
        "route53:CreateHostedZone",
        "route53:GetHostedZone",
        "route53:ListHostedZonesByName",
        "ec2:DescribeVpcs",
        "ec2:DescribeRegions",
        "ecs:RegisterTaskDefinition",
        "iam:PassRole",
    }
    assert set(required["StartFunction"]) == {"states:StartExecution"}


# --- static rules --------------------------------------------------------------------------------
def test_every_policy_is_checkable_and_scoped_to_its_own_service(
    policies: dict[str, list[Grant]],
) -> None:
    assert policies, "no AWS::Serverless::Function in template.yaml"
    assert not resource_mismatches(policies)


def test_every_unscoped_statement_says_why(policies: dict[str, list[Grant]]) -> None:
    unexplained = sorted(
        {
            f"{g.function} {g.sid}"
            for grants in policies.values()
            for g in grants
            if "*" in g.resources and not g.statement_comment
        }
    )
    assert not unexplained, f'Resource: "*" without a comment above the statement: {unexplained}'
