"""Preflight checks, each problem named with its resource and fix; nothing is changed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from envbuild_lambda.aws import Clients
from envbuild_lambda.errors import PreflightFailed
from envbuild_lambda.spec import EnvironmentSpec, normalize, parse_spec
from envbuild_lambda.steps import preflight

from .conftest import ACCOUNT, Prerequisites, workshop_spec

ECS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture
def ready(clients: Clients, prerequisites: Prerequisites) -> EnvironmentSpec:
    ec2 = clients.ec2
    ec2.modify_vpc_attribute(VpcId=prerequisites.vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=prerequisites.vpc_id, EnableDnsHostnames={"Value": True})
    for name in ("ecsTaskExecutionRole", "ecsTaskRole"):
        clients.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(ECS_TRUST))
    return normalize(
        parse_spec(workshop_spec(prerequisites.variables())), partition="aws", account_id=ACCOUNT
    )


def test_a_ready_account_passes(clients: Clients, ready: EnvironmentSpec) -> None:
    assert preflight.preflight(clients, ready)["checked"] is True


def test_dns_support_off_is_named_with_the_fix(clients: Clients, ready: EnvironmentSpec) -> None:
    clients.ec2.modify_vpc_attribute(VpcId=ready.namespace.vpcId, EnableDnsSupport={"Value": False})
    with pytest.raises(PreflightFailed, match=r"DNS resolution disabled.*--enable-dns-support"):
        preflight.preflight(clients, ready)


def test_a_missing_vpc_skips_the_checks_that_depend_on_it(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    spec = ready.model_copy(
        update={"namespace": ready.namespace.model_copy(update={"vpcId": "vpc-0123456789abcdef0"})}
    )
    with pytest.raises(PreflightFailed) as raised:
        preflight.preflight(clients, spec)
    assert str(raised.value).startswith("1 problem(s)")
    assert "VPC vpc-0123456789abcdef0 does not exist" in str(raised.value)


def test_every_missing_resource_is_reported_at_once(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    spec = ready.model_copy(
        update={
            "namespace": ready.namespace.model_copy(update={"vpcId": "vpc-0123456789abcdef0"}),
            "network": ready.network.model_copy(
                update={
                    "subnets": [ready.network.subnets[0], "subnet-0123456789abcdef0"],
                    "securityGroups": ["sg-0123456789abcdef0"],
                }
            ),
            "cluster": "no-such-cluster",
        }
    )
    with pytest.raises(PreflightFailed) as raised:
        preflight.preflight(clients, spec)
    message = str(raised.value)
    assert "VPC vpc-0123456789abcdef0 does not exist" in message
    assert "subnet subnet-0123456789abcdef0 does not exist" in message
    assert "security group sg-0123456789abcdef0 does not exist" in message
    assert "no-such-cluster" in message
    assert message.startswith("4 problem(s)"), message  # the existing subnet is not blamed


def test_a_draining_service_is_named(
    clients: Clients, ready: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    def describe(**kwargs: Any) -> dict[str, Any]:
        return {"services": [{"serviceName": "web-service", "status": "DRAINING"}], "failures": []}

    monkeypatch.setattr(clients.ecs, "describe_services", describe)
    with pytest.raises(PreflightFailed, match=r"web-service .* is DRAINING"):
        preflight.preflight(clients, ready)


@pytest.mark.parametrize(
    ("document", "trusted"),
    [
        (ECS_TRUST, True),
        (
            "%7B%22Statement%22%3A%20%5B%7B%22Effect%22%3A%20%22Allow%22%2C%20%22Principal%22%3A%20%7B%22Service%22%3A"
            "%20%5B%22ecs-tasks.amazonaws.com%22%5D%7D%2C%20%22Action%22%3A%20%22sts%3AAssumeRole%22%7D%5D%7D",
            True,
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            },
            False,
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            },
            False,
        ),
        (None, False),
    ],
)
def test_trust_policy_reading(document: object, trusted: bool) -> None:
    assert preflight.trusts_ecs_tasks(document) is trusted


def _small_subnets(clients: Clients, spec: EnvironmentSpec, taken: tuple[int, int]) -> list[str]:
    """Two /28 subnets (11 usable addresses each) of the spec's VPC, with ``taken`` addresses
    of each held by network interfaces."""
    subnets = []
    for index, count in enumerate(taken):
        subnet = clients.ec2.create_subnet(
            VpcId=spec.namespace.vpcId, CidrBlock=f"10.0.{9 + index}.0/28"
        )["Subnet"]["SubnetId"]
        for _ in range(count):
            clients.ec2.create_network_interface(SubnetId=subnet)
        subnets.append(subnet)
    return subnets


def test_subnets_without_enough_free_addresses_are_named_with_the_numbers(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    """Issue 15 item 8: 5 tasks at desiredCount, up to 10 while deployments roll (maximumPercent
    200); the subnets have 0 + 3 free addresses."""
    subnets = _small_subnets(clients, ready, (11, 8))
    spec = ready.model_copy(
        update={"network": ready.network.model_copy(update={"subnets": subnets})}
    )
    with pytest.raises(PreflightFailed) as raised:
        preflight.preflight(clients, spec)
    message = str(raised.value)
    assert message.startswith("1 problem(s)")
    assert (
        f"the subnets have 3 free IPv4 address(es) in all ({subnets[0]}: 0, {subnets[1]}: 3) but"
        " the build may need 10 (5 task(s) at desiredCount, up to 5 more while deployments roll"
        " (maximumPercent)"
    ) in message


def test_subnets_with_room_for_the_tasks_and_their_surge_pass(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    subnets = _small_subnets(clients, ready, (6, 6))  # 5 + 5 free: exactly the 10 needed
    spec = ready.model_copy(
        update={"network": ready.network.model_copy(update={"subnets": subnets})}
    )
    assert preflight.preflight(clients, spec)["checked"] is True
    probe = spec.model_copy(update={"verify": spec.verify.model_copy(update={"probe": True})})
    with pytest.raises(PreflightFailed, match=r"may need 11 .*1 for the DNS probe"):
        preflight.preflight(clients, probe)


# --- issue 17: capacity providers and secrets ---------------------------------------------------


def _with(spec: EnvironmentSpec, **fields: Any) -> EnvironmentSpec:
    web = spec.services[0].model_copy(update=fields)
    return spec.model_copy(update={"services": [web, *spec.services[1:]]})


def test_a_capacity_provider_the_cluster_lacks_is_named_with_the_fix(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    from envbuild_lambda.spec import CapacityProvider

    spot = [CapacityProvider(capacityProvider="FARGATE_SPOT")]
    with pytest.raises(PreflightFailed) as caught:
        preflight.preflight(clients, _with(ready, capacityProviders=spot))
    message = str(caught.value)
    assert "has no capacity provider FARGATE_SPOT (used by services[].capacityProviders of web)" in message  # fmt: skip
    assert "put-cluster-capacity-providers" in message

    clients.ecs.put_cluster_capacity_providers(
        cluster=ready.cluster,
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[],
    )
    assert preflight.preflight(clients, _with(ready, capacityProviders=spot))["checked"] is True


def test_secrets_are_looked_up_without_reading_their_values(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    from envbuild_lambda.aws import Caller

    caller = Caller(partition="aws", region="us-east-1", account_id=ACCOUNT)
    arn = clients.secretsmanager.create_secret(Name="db", SecretString="x")["ARN"]
    clients.ssm.put_parameter(Name="/app/token", Value="t", Type="SecureString")
    _allow(clients, "ecsTaskExecutionRole", READ_SECRETS, "*")
    secrets = {
        "DB": f"{arn}:password::",
        "TOKEN": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/app/token",
        "ELSEWHERE": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:x-AbCdEf",
    }
    assert preflight.preflight(clients, _with(ready, secrets=secrets), caller=caller)["checked"]

    gone = {
        "DB": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:gone-AbCdEf",
        "TOKEN": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/app/gone",
    }
    with pytest.raises(PreflightFailed) as caught:
        preflight.preflight(clients, _with(ready, secrets=gone), caller=caller)
    message = str(caught.value)
    assert "secret arn:aws:secretsmanager:us-east-1:" in message
    assert ":secret:gone-AbCdEf (web.secrets.DB) does not exist in Secrets Manager" in message
    assert "SSM parameter /app/gone (web.secrets.TOKEN) does not exist" in message


# --- issue 17: the execution role may read the secrets; ECS Exec's task role permissions --------

READ_SECRETS = ["secretsmanager:GetSecretValue", "ssm:GetParameters"]
EXEC = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]
CALLER_ARGS = {"partition": "aws", "region": "us-east-1", "account_id": ACCOUNT}


def _allow(
    clients: Clients,
    role: str,
    actions: list[str],
    resource: str | list[str],
    effect: str = "Allow",
) -> None:
    statement = {"Effect": effect, "Action": actions, "Resource": resource}
    clients.iam.put_role_policy(
        RoleName=role,
        PolicyName=f"{effect}-{len(actions)}-{abs(hash(str(resource))) % 10**6}",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )


def _nothing_created(clients: Clients) -> None:
    assert clients.servicediscovery.list_namespaces()["Namespaces"] == []
    assert clients.ecs.list_services(cluster="workshop-cluster")["serviceArns"] == []
    assert clients.ecs.list_task_definitions()["taskDefinitionArns"] == []


def test_a_secret_the_execution_role_may_not_read_fails_the_preflight_naming_it(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    """Allowed on one secret's exact ARN only: the other secret (and the SSM parameter, on
    which nothing is allowed) are named with the field, the role and the action; a partial
    secret ARN with a :json-key suffix is simulated on the secret's full ARN."""
    from envbuild_lambda.aws import Caller

    db = clients.secretsmanager.create_secret(Name="db", SecretString="x")["ARN"]
    api = clients.secretsmanager.create_secret(Name="api-key", SecretString="x")["ARN"]
    clients.ssm.put_parameter(Name="/app/token", Value="t", Type="SecureString")
    _allow(clients, "ecsTaskExecutionRole", ["secretsmanager:GetSecretValue"], db)
    partial = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:api-key"
    secrets = {
        "DB": f"{db}:password::",
        "API_KEY": f"{partial}:key::",
        "TOKEN": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/app/token",
    }
    role = f"arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"
    with pytest.raises(PreflightFailed) as caught:
        preflight.preflight(clients, _with(ready, secrets=secrets), caller=Caller(**CALLER_ARGS))
    message = str(caught.value)
    assert message.startswith("2 problem(s)"), message
    assert (
        f"the task execution role {role} may not read secret {partial} (web.secrets.API_KEY):"
        f" secretsmanager:GetSecretValue on {api} is implicitDeny" in message
    )
    assert (
        f"may not read SSM parameter /app/token (web.secrets.TOKEN): ssm:GetParameters on"
        f" arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/app/token is implicitDeny" in message
    )
    assert "web.secrets.DB" not in message
    _nothing_created(clients)


def test_an_explicit_deny_wins_and_is_reported_with_the_other_problems_at_once(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    from envbuild_lambda.aws import Caller

    db = clients.secretsmanager.create_secret(Name="db", SecretString="x")["ARN"]
    _allow(clients, "ecsTaskExecutionRole", ["secretsmanager:*"], "*")
    _allow(clients, "ecsTaskExecutionRole", ["secretsmanager:GetSecretValue"], db, "Deny")
    spec = _with(ready, secrets={"DB": db}).model_copy(update={"cluster": "no-such-cluster"})
    with pytest.raises(PreflightFailed) as caught:
        preflight.preflight(clients, spec, caller=Caller(**CALLER_ARGS))
    message = str(caught.value)
    assert message.startswith("2 problem(s)"), message
    assert "ECS cluster no-such-cluster does not exist" in message
    assert f"may not read secret {db} (web.secrets.DB)" in message
    assert "is explicitDeny (an explicit Deny in its policies refuses it)" in message


def test_many_secrets_are_simulated_in_batches_and_each_denied_one_is_named(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    """120 parameters (three SimulatePrincipalPolicy batches): the role may read those under
    /app/ok/ only; exactly the 60 others are named."""
    from envbuild_lambda.aws import Caller

    secrets = {}
    for i in range(120):
        name = f"/app/{'ok' if i % 2 else 'no'}/p{i:03d}"
        clients.ssm.put_parameter(Name=name, Value="v", Type="String")
        secrets[f"P{i:03d}"] = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{name}"
    ok = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/app/ok/*"
    _allow(clients, "ecsTaskExecutionRole", ["ssm:GetParameters"], ok)
    with pytest.raises(PreflightFailed) as caught:
        preflight.preflight(clients, _with(ready, secrets=secrets), caller=Caller(**CALLER_ARGS))
    message = str(caught.value)
    assert message.startswith("60 problem(s)"), message[:200]
    assert "SSM parameter /app/no/p000 (web.secrets.P000)" in message
    assert "/app/ok/" not in message


def test_readable_secrets_pass_and_a_missing_role_is_named_without_a_simulation(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    from envbuild_lambda.aws import Caller

    db = clients.secretsmanager.create_secret(Name="db", SecretString="x")["ARN"]
    _allow(clients, "ecsTaskExecutionRole", ["secretsmanager:GetSecretValue"], "*")
    spec = _with(ready, secrets={"DB": db})
    result = preflight.preflight(clients, spec, caller=Caller(**CALLER_ARGS))
    assert (result["checked"], result["warnings"]) == (True, [])

    gone = f"arn:aws:iam::{ACCOUNT}:role/gone"
    with pytest.raises(PreflightFailed) as caught:
        preflight.preflight(
            clients,
            spec.model_copy(update={"executionRoleArn": gone}),
            caller=Caller(**CALLER_ARGS),
        )
    assert str(caught.value) == (
        f"1 problem(s) found before building: IAM role {gone} does not exist: create it or fix"
        " executionRoleArn"
    )


def test_ecs_exec_without_the_task_roles_permissions_is_a_warning_naming_service_and_role(
    clients: Clients, ready: EnvironmentSpec
) -> None:
    spec = _with(ready, enableExecuteCommand=True)
    role = f"arn:aws:iam::{ACCOUNT}:role/ecsTaskRole"
    result = preflight.preflight(clients, spec)
    assert result["checked"] is True  # a warning: the build goes on
    (warning,) = result["warnings"]
    assert warning.startswith(
        f"service web sets enableExecuteCommand but its task role {role} (taskRoleArn) may not"
        " call ssmmessages:CreateControlChannel, ssmmessages:CreateDataChannel,"
    )
    # only some of the actions allowed: the others are named
    _allow(clients, "ecsTaskRole", EXEC[:2], "*")
    (warning,) = preflight.preflight(clients, spec)["warnings"]
    assert "may not call ssmmessages:OpenControlChannel, ssmmessages:OpenDataChannel:" in warning

    _allow(clients, "ecsTaskRole", ["ssmmessages:*"], "*")
    assert preflight.preflight(clients, spec)["warnings"] == []
    assert preflight.preflight(clients, ready)["warnings"] == []  # no service asks for ECS Exec
