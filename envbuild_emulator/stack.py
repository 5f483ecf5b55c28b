"""The CloudFormation stack of the emulated deployment, as `sam deploy` leaves one in AWS.

The emulator deploys template.yaml itself (envbuild_emulator.deploy); this records it as a stack
(moto CloudFormation) named like samconfig.toml's stack, whose Outputs are the template's Outputs
that name a deployed state machine (its ARN for ``!Ref``, its name for ``!GetAtt <id>.Name``) or
table (its name for ``!Ref``).
Tools that find envbuild through the stack (`envbuild run --stack-name`, `aws cloudformation
describe-stacks`) then work against the emulator as against AWS.
"""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from envbuild_emulator.deploy import Deployment
    from envbuild_emulator.template import Template

#: A resource that creates nothing (CloudFormation requires one); moto stores it without a model.
PLACEHOLDER = {"Type": "AWS::CloudFormation::WaitConditionHandle"}


def stack_outputs(template: Template, deployment: Deployment) -> dict[str, dict[str, str]]:
    """template.yaml's Outputs that the emulated deployment can answer, resolved."""
    outputs: dict[str, dict[str, str]] = {}
    for key, spec in (template.raw.get("Outputs") or {}).items():
        value = spec.get("Value")
        resolved: str | None = None
        if isinstance(value, dict) and "Ref" in value:
            ref = str(value["Ref"])
            resolved = deployment.state_machines.get(ref)
            if template.resources.get(ref, {}).get("Type") == "AWS::DynamoDB::Table":
                resolved = template.physical_name(ref)  # the emulator made it (deploy.py)
        elif isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            arn = deployment.state_machines.get(logical_id)
            resolved = arn.rsplit(":", 1)[-1] if arn and attribute == "Name" else None
        if resolved is not None:
            outputs[key] = {"Value": resolved, "Description": str(spec.get("Description", ""))}
    return outputs


def create_stack(client: Callable[[str], Any], template: Template, deployment: Deployment) -> str:
    """Create the stack (named template.stack_name); returns its id."""
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "envbuild deployed on the emulator (state machines created by the emulator)",
        "Resources": {"EmulatedDeployment": PLACEHOLDER},
        "Outputs": stack_outputs(template, deployment),
    }
    with warnings.catch_warnings():  # "WaitConditionHandle ... not supported": nothing to model
        warnings.simplefilter("ignore", UserWarning)
        return str(
            client("cloudformation").create_stack(
                StackName=template.stack_name, TemplateBody=json.dumps(body)
            )["StackId"]
        )
