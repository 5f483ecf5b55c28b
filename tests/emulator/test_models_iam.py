"""IAM SimulatePrincipalPolicy on the emulator (envbuild_emulator.models.iam), through boto3
against hand-written role policies: an Allow on the exact ARN, wildcards, an explicit Deny over
an Allow, NotResource and NotAction, a managed policy, conditions, no policy at all, pages."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from envbuild_emulator.models import World
from envbuild_emulator.models.iam import PolicyStatement, evaluate
from envbuild_emulator.moto_internals import ADDED_POINTS, lookup

ACCOUNT = "123456789012"
SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:shop/db-AbCdEf"
OTHER = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:shop/api-GhIjKl"
PARAMETER = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/shop/token"
READ = "secretsmanager:GetSecretValue"


@pytest.fixture
def iam(world: World, boto_session: boto3.session.Session) -> Any:
    return boto_session.client("iam")


def role(iam: Any, *statements: dict[str, Any], name: str = "exec") -> str:
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    for index, statement in enumerate(statements):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=f"p{index}",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )
    return arn


def decisions(iam: Any, arn: str, actions: list[str], resources: list[str]) -> dict[str, str]:
    answer = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=actions, ResourceArns=resources
    )
    return {
        f"{r['EvalActionName']} {r['EvalResourceName']}": r["EvalDecision"]
        for r in answer["EvaluationResults"]
    }


def test_moto_still_lacks_what_the_emulator_adds() -> None:
    """A moto upgrade that implements SimulatePrincipalPolicy is noticed (Patcher.add refuses
    to hide moto's own, and this test names it)."""
    for ref in ADDED_POINTS:
        owner = lookup(ref.module, ref.attr.rpartition(".")[0])
        assert not hasattr(owner, ref.attr.rpartition(".")[2]) or getattr(
            getattr(owner, ref.attr.rpartition(".")[2]), "_envbuild_added", False
        ), ref


def test_an_allow_on_the_exact_arn_allows_that_resource_only(iam: Any) -> None:
    arn = role(iam, {"Effect": "Allow", "Action": READ, "Resource": SECRET})
    assert decisions(iam, arn, [READ, "ssm:GetParameters"], [SECRET, OTHER]) == {
        f"{READ} {SECRET}": "allowed",
        f"{READ} {OTHER}": "implicitDeny",
        f"ssm:GetParameters {SECRET}": "implicitDeny",
        f"ssm:GetParameters {OTHER}": "implicitDeny",
    }
    matched = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=[READ], ResourceArns=[SECRET]
    )["EvaluationResults"][0]["MatchedStatements"]
    assert [(m["SourcePolicyId"], m["SourcePolicyType"]) for m in matched] == [("p0", "role")]


def test_wildcards_match_any_run_and_one_character_and_actions_ignore_case(iam: Any) -> None:
    arn = role(
        iam,
        {
            "Effect": "Allow",
            "Action": "SecretsManager:Get*",
            "Resource": f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:shop/db-??????",
        },
    )
    assert decisions(iam, arn, [READ], [SECRET, OTHER, SECRET + "x"]) == {
        f"{READ} {SECRET}": "allowed",
        f"{READ} {OTHER}": "implicitDeny",
        f"{READ} {SECRET}x": "implicitDeny",  # ? is exactly one character
    }


def test_an_explicit_deny_wins_over_any_allow(iam: Any) -> None:
    arn = role(
        iam,
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "secretsmanager:*", "Resource": SECRET},
    )
    assert decisions(iam, arn, [READ], [SECRET, OTHER]) == {
        f"{READ} {SECRET}": "explicitDeny",
        f"{READ} {OTHER}": "allowed",
    }


def test_not_resource_and_not_action(iam: Any) -> None:
    arn = role(
        iam,
        {"Effect": "Allow", "Action": READ, "NotResource": SECRET},
        {"Effect": "Deny", "NotAction": ["secretsmanager:*", "ssm:*"], "Resource": "*"},
    )
    assert decisions(iam, arn, [READ, "kms:Decrypt"], [SECRET, OTHER]) == {
        f"{READ} {SECRET}": "implicitDeny",
        f"{READ} {OTHER}": "allowed",
        f"kms:Decrypt {SECRET}": "explicitDeny",
        f"kms:Decrypt {OTHER}": "explicitDeny",
    }


def test_a_role_without_a_policy_is_implicitly_denied_everything(iam: Any) -> None:
    arn = role(iam)
    assert decisions(iam, arn, [READ], [SECRET]) == {f"{READ} {SECRET}": "implicitDeny"}
    (result,) = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["ssmmessages:OpenDataChannel"])["EvaluationResults"]  # fmt: skip
    assert (result["EvalResourceName"], result["EvalDecision"]) == ("*", "implicitDeny")


def test_attached_managed_policies_count_like_inline_ones(iam: Any) -> None:
    arn = role(iam)
    policy = iam.create_policy(
        PolicyName="read-params",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="exec", PolicyArn=policy)
    answer = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["ssm:GetParameters"], ResourceArns=[PARAMETER]
    )["EvaluationResults"][0]
    assert answer["EvalDecision"] == "allowed"
    assert answer["MatchedStatements"][0]["SourcePolicyType"] == "user-managed"


def test_conditions_hold_only_with_the_context_they_name(iam: Any) -> None:
    arn = role(
        iam,
        {
            "Effect": "Allow",
            "Action": READ,
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/team": "payments"}},
        },
    )
    without = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=[READ], ResourceArns=[SECRET]
    )["EvaluationResults"][0]
    assert without["EvalDecision"] == "implicitDeny"
    assert without["MissingContextValues"] == ["aws:ResourceTag/team"]
    given = iam.simulate_principal_policy(
        PolicySourceArn=arn,
        ActionNames=[READ],
        ResourceArns=[SECRET],
        ContextEntries=[
            {
                "ContextKeyName": "aws:ResourceTag/team",
                "ContextKeyValues": ["payments"],
                "ContextKeyType": "string",
            }
        ],
    )["EvaluationResults"][0]
    assert given["EvalDecision"] == "allowed"


def test_results_come_in_pages_of_max_items(iam: Any) -> None:
    arn = role(iam, {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"})
    resources = [f"{PARAMETER}{i}" for i in range(5)]
    first = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["ssm:GetParameters"], ResourceArns=resources, MaxItems=2
    )
    assert (len(first["EvaluationResults"]), first["IsTruncated"]) == (2, True)
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=arn,
        ActionNames=["ssm:GetParameters"],
        ResourceArns=resources,
        PaginationConfig={"PageSize": 2},
    )
    seen = [r["EvalResourceName"] for page in pages for r in page["EvaluationResults"]]
    assert seen == resources


def test_an_unknown_role_is_no_such_entity(iam: Any) -> None:
    with pytest.raises(ClientError) as caught:
        iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/gone", ActionNames=[READ]
        )
    assert caught.value.response["Error"]["Code"] == "NoSuchEntity"


def test_an_operator_the_model_does_not_evaluate_never_holds() -> None:
    statement = PolicyStatement(
        "p",
        "role",
        "Allow",
        {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*",
            "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
        },
    )
    context = {"aws:MultiFactorAuthAge": ["10"]}
    assert evaluate([statement], READ, SECRET, context)[0] == "implicitDeny"
