""" "Deploys" template.yaml into the emulated account, as `sam deploy` would into AWS.

Functions are not uploaded: their ARNs are dispatched in-process to the handlers their CodeUri and
Handler name. The state machine gets the ASL with its DefinitionSubstitutions resolved, and its
EventBridge rules are created with their pattern, InputPath, retry policy and dead-letter queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from envbuild_emulator.seed import trust_policy

if TYPE_CHECKING:
    from collections.abc import Callable

    from envbuild_emulator.interpreter import LambdaDispatcher
    from envbuild_emulator.template import Template


@dataclass
class Deployment:
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    rules: list[str] = field(default_factory=list)
    dead_letter_queues: list[str] = field(default_factory=list)

    @property
    def build_state_machine_arn(self) -> str:
        return self.state_machines["BuildEnvironmentStateMachine"]

    @property
    def teardown_state_machine_arn(self) -> str:
        return self.state_machines["TeardownEnvironmentStateMachine"]


def deploy(
    template: Template, client: Callable[[str], Any], dispatcher: LambdaDispatcher
) -> Deployment:
    deployment = Deployment()
    dynamodb = client("dynamodb")
    for name, props in template.tables().items():
        dynamodb.create_table(
            TableName=name,
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
        )
    for function in template.functions():
        dispatcher.register(function)
    iam, sfn, events, sqs = client("iam"), client("stepfunctions"), client("events"), client("sqs")
    for machine in template.state_machines():
        role = iam.create_role(
            RoleName=f"{machine.name}Role",
            AssumeRolePolicyDocument=trust_policy("states.amazonaws.com"),
        )["Role"]["Arn"]
        arn = sfn.create_state_machine(
            name=machine.name, definition=machine.definition, roleArn=role, type="STANDARD"
        )["stateMachineArn"]
        deployment.state_machines[machine.logical_id] = arn
        for index, rule in enumerate(machine.event_rules, start=1):
            rule_name = f"{machine.name}-Rule{index}"
            events.put_rule(
                Name=rule_name,
                EventPattern=json.dumps(rule["Pattern"]),
                State="ENABLED",
                EventBusName=rule.get("EventBusName", "default"),
            )
            events_role = iam.create_role(
                RoleName=f"{rule_name}Role",
                AssumeRolePolicyDocument=trust_policy("events.amazonaws.com"),
            )["Role"]["Arn"]
            target: dict[str, Any] = {"Id": machine.logical_id, "Arn": arn, "RoleArn": events_role}
            if "InputPath" in rule:
                target["InputPath"] = rule["InputPath"]
            if "RetryPolicy" in rule:
                target["RetryPolicy"] = {
                    key: int(value) for key, value in rule["RetryPolicy"].items()
                }
            if "DeadLetterConfig" in rule:
                queue = sqs.create_queue(QueueName=f"{rule_name}-dlq")["QueueUrl"]
                queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
                    "Attributes"
                ]["QueueArn"]
                target["DeadLetterConfig"] = {"Arn": queue_arn}
                deployment.dead_letter_queues.append(queue)
            events.put_targets(
                Rule=rule_name, EventBusName=rule.get("EventBusName", "default"), Targets=[target]
            )
            deployment.rules.append(rule_name)
    return deployment
