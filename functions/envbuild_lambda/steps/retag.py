"""A diff row's tag changes (``diff.apply_tags``) sent to ECS or Cloud Map: TagResource with the
spec's tags that differ, UntagResource of the keys the spec dropped, on the resource's ARN (a
row never holds an ``envbuild:*`` key). ``label`` names the resource in an error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envbuild_lambda.errors import aws_errors
from envbuild_lambda.steps import desired, diff

if TYPE_CHECKING:
    from envbuild_lambda.aws import Clients
    from envbuild_lambda.steps.diff import Change


def ecs(clients: Clients, arn: str, change: Change, label: str) -> None:
    """An ECS service or task definition revision."""

    def tag(add: dict[str, str]) -> None:
        with aws_errors(f"TagResource {label}"):
            clients.ecs.tag_resource(resourceArn=arn, tags=desired.ecs_tags(add))

    def untag(remove: list[str]) -> None:
        with aws_errors(f"UntagResource {label}"):
            clients.ecs.untag_resource(resourceArn=arn, tagKeys=remove)

    diff.apply_tags(change, tag, untag)


def cloud_map(clients: Clients, arn: str, change: Change, label: str) -> None:
    """A Cloud Map namespace or service (registry)."""

    def tag(add: dict[str, str]) -> None:
        with aws_errors(f"TagResource {label}"):
            clients.servicediscovery.tag_resource(ResourceARN=arn, Tags=desired.cloud_map_tags(add))

    def untag(remove: list[str]) -> None:
        with aws_errors(f"UntagResource {label}"):
            clients.servicediscovery.untag_resource(ResourceARN=arn, TagKeys=remove)

    diff.apply_tags(change, tag, untag)
