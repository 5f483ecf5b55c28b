"""Transform template.yaml to the CloudFormation that AWS would deploy, for the lint gates.

    python tools/sam_transform.py template.yaml .aws-sam/transformed.json

Does what `sam package` + the AWS::Serverless transform do, offline: the functions' CodeUri
becomes an S3 location (placeholder bucket, never uploaded) and each state machine's
DefinitionUri is inlined as its Definition (the ASL file, DefinitionSubstitutions kept), then
samtranslator turns the SAM resources into CloudFormation (roles with their policies, log
configuration, EventBridge rules). cfn-lint (with the serverless rules) and checkov then run on
the result: they see the IAM roles and Lambda functions exactly as deployed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

#: Where `sam package` would upload the code; nothing is uploaded (the transform only names it).
ARTIFACT = "s3://envbuild-artifacts-placeholder/functions.zip"


class NoManagedPolicyLookup:
    """The template names no managed policy by name, so nothing needs IAM's ListPolicies."""

    def load(self) -> dict[str, str]:
        return {}


def packaged(template: dict[str, Any], base: Path) -> dict[str, Any]:
    function_globals = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = ARTIFACT
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in properties:
            properties["CodeUri"] = ARTIFACT
        if (
            resource.get("Type") == "AWS::Serverless::StateMachine"
            and "DefinitionUri" in properties
        ):
            path = base / str(properties.pop("DefinitionUri"))
            properties["Definition"] = json.loads(path.read_text(encoding="utf-8"))
    return template


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = Path(argv[1]), Path(argv[2])
    template = packaged(yaml_parse(source.read_text(encoding="utf-8")), source.parent)
    parameters = {
        name: spec["Default"]
        for name, spec in template.get("Parameters", {}).items()
        if "Default" in spec
    }
    # Resource Metadata (the checkov skips and their reasons) follows each SAM resource onto the
    # resources generated from it, as `sam build` passes it through.
    result = transform(
        template,
        parameters,
        NoManagedPolicyLookup(),  # type: ignore[arg-type]
        passthrough_metadata=True,
    )
    if "Metadata" in template and "Metadata" not in result:
        result["Metadata"] = template["Metadata"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{source} -> {target}: {len(result.get('Resources', {}))} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
