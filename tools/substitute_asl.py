"""Write each state machine's ASL with its DefinitionSubstitutions filled in, for statelint.

    python tools/substitute_asl.py template.yaml .aws-sam/asl

Every ${Key} of a definition becomes an ARN of the shape CloudFormation would put there (the
function's or state machine's ARN, an !Sub with the pseudo parameters filled in), in an example
partition, region and account: statelint checks the states language, not the values.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

EXAMPLE = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "111122223333",
    "AWS::StackName": "envbuild",
}
ARN_OF = {
    "AWS::Serverless::Function": "arn:aws:lambda:us-east-1:111122223333:function:{}",
    "AWS::Serverless::StateMachine": "arn:aws:states:us-east-1:111122223333:stateMachine:{}",
}


#: The template's Parameters (set by main).
PARAMETERS: dict[str, Any] = {}


def value(node: Any, resources: dict[str, Any]) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((function, argument),) = node.items()
        if function == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: sub_variable(m.group(1), resources), argument)
        if function == "Fn::GetAtt":
            target, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            if attribute == "Arn":
                return ARN_OF[resources[target]["Type"]].format(target)
            if attribute == "Name":
                return str(target)
        if function == "Ref" and argument in PARAMETERS:
            # a template parameter: its default (what `sam deploy` uses when given no override)
            return str(PARAMETERS[argument].get("Default", argument))
        if function == "Ref" and argument in resources:
            pattern = ARN_OF.get(resources[argument]["Type"])
            # Ref gives a function's or state machine's ARN, a table's (or queue's...) name.
            return pattern.format(argument) if pattern else str(argument)
    raise ValueError(f"cannot resolve DefinitionSubstitutions value {node!r}")


def sub_variable(name: str, resources: dict[str, Any]) -> str:
    if name in EXAMPLE:
        return EXAMPLE[name]
    target, _, attribute = name.partition(".")
    return value({"Fn::GetAtt": [target, attribute]} if attribute else {"Ref": target}, resources)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = Path(argv[1]), Path(argv[2])
    template = yaml_parse(source.read_text(encoding="utf-8"))
    resources = template["Resources"]
    PARAMETERS.update(template.get("Parameters") or {})
    target.mkdir(parents=True, exist_ok=True)
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::StateMachine":
            continue
        properties = resource["Properties"]
        text = (source.parent / properties["DefinitionUri"]).read_text(encoding="utf-8")
        for key, node in properties.get("DefinitionSubstitutions", {}).items():
            text = text.replace("${" + key + "}", value(node, resources))
        left = sorted(set(re.findall(r"\$\{([^}]+)\}", text)))
        if left:
            print(f"{logical_id}: no DefinitionSubstitutions for {left}", file=sys.stderr)
            return 1
        json.loads(text)
        out = target / f"{logical_id}.asl.json"
        out.write_text(text, encoding="utf-8")
        print(f"{properties['DefinitionUri']} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
