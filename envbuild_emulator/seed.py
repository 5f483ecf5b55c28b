"""The workshop's prerequisites in the emulated account (its earlier chapters' resources).

A VPC with DNS support and DNS hostnames on, two private subnets in two AZs, a security group for
the tasks, the ECS cluster and the two IAM roles; exposed under the workshop env file's names.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

PARAMETER = "/envbuild-emulator/prerequisites"


def trust_policy(service: str) -> str:
    """An IAM role trust policy letting ``service`` (e.g. ecs-tasks.amazonaws.com) assume it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def role_policy(role: str, region: str, account: str) -> tuple[str, dict[str, Any]]:
    """The inline policy each seeded role gets, so that a spec with secrets and ECS Exec passes
    the preflight's IAM simulation: the execution role reads the account's secrets and
    parameters (ECS injects ``secrets`` with it), the task role opens ECS Exec's channels."""
    if role == "ecsTaskExecutionRole":
        return "ReadSecrets", {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameters"],
            "Resource": [
                f"arn:aws:secretsmanager:{region}:{account}:secret:*",
                f"arn:aws:ssm:{region}:{account}:parameter/*",
            ],
        }
    return "EcsExec", {
        "Effect": "Allow",
        "Action": [
            "ssmmessages:CreateControlChannel",
            "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenControlChannel",
            "ssmmessages:OpenDataChannel",
        ],
        "Resource": "*",
    }


TAGS = [{"Key": "envbuild:emulator", "Value": "prerequisites"}]


def seed(
    client: Callable[[str], Any], region: str, cluster_name: str = "workshop-cluster"
) -> dict[str, str]:
    ec2 = client("ec2")
    vpc = ec2.create_vpc(
        CidrBlock="10.0.0.0/16",
        TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [*TAGS, {"Key": "Name", "Value": "workshop-vpc"}]}
        ],
    )["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = []
    for index, zone in enumerate(("a", "b"), start=1):
        subnets.append(
            ec2.create_subnet(
                VpcId=vpc,
                CidrBlock=f"10.0.{index + 2}.0/24",
                AvailabilityZone=f"{region}{zone}",
                TagSpecifications=[
                    {
                        "ResourceType": "subnet",
                        "Tags": [*TAGS, {"Key": "Name", "Value": f"workshop-private-{index}"}],
                    }
                ],
            )["Subnet"]["SubnetId"]
        )
    group = ec2.create_security_group(
        GroupName="workshop-ecs-sg", Description="ECS tasks of the workshop", VpcId=vpc
    )["GroupId"]
    client("ecs").create_cluster(
        clusterName=cluster_name, capacityProviders=["FARGATE", "FARGATE_SPOT"]
    )
    iam = client("iam")
    roles = {}
    for name in ("ecsTaskExecutionRole", "ecsTaskRole"):
        roles[name] = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=trust_policy("ecs-tasks.amazonaws.com")
        )["Role"]["Arn"]
        policy_name, statement = role_policy(name, region, roles[name].split(":")[4])
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy_name,
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )
    prerequisites = {
        "VPC_ID": vpc,
        "CLUSTER_NAME": cluster_name,
        "PRIVATE_SUBNET_1": subnets[0],
        "PRIVATE_SUBNET_2": subnets[1],
        "ECS_SG": group,
        "EXECUTION_ROLE_ARN": roles["ecsTaskExecutionRole"],
        "TASK_ROLE_ARN": roles["ecsTaskRole"],
        "AWS_REGION": region,
        "ACCOUNT_ID": roles["ecsTaskRole"].split(":")[4],
    }
    client("ssm").put_parameter(
        Name=PARAMETER, Type="String", Value=json.dumps(prerequisites), Overwrite=True
    )
    return prerequisites


def read_prerequisites(client: Callable[[str], Any]) -> dict[str, str]:
    """The prerequisites a running emulator seeded (for `envbuild run --endpoint`)."""
    value = client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    return dict(json.loads(value))
