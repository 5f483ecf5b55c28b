"""envbuild on a deployed stack: the state machines from the stack's outputs, and every AWS error
a user can meet reported in one line.

    envbuild run SPEC --stack-name envbuild [--region R] [--profile P] [--endpoint URL]
    envbuild watch EXECUTION_ARN [--region R] [--profile P] [--endpoint URL]
    envbuild history ENVIRONMENT [--stack-name envbuild] [--region R] [--profile P] [--endpoint URL]
    envbuild unlock ENVIRONMENT [--stack-name envbuild] [--yes] [--region R] [--profile P] [--endpoint URL]

The same code runs against AWS and against the emulator (`--endpoint`, whose stack "envbuild"
carries the template's outputs): one session, one botocore Config, the same calls.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import boto3
import botocore.exceptions
from botocore.config import Config

from envbuild.cli import (
    STATE_MACHINE_NAME,
    TEARDOWN_STATE_MACHINE_NAME,
    CliError,
    Target,
    add_output_argument,
    finish,
    progress_stream,
)
from envbuild.follow import AWS, Clock, StillRunning, follow, since_start

DEFAULT_STACK_NAME = "envbuild"  # samconfig.toml's stack_name
#: template.yaml Outputs the CLI reads, by state machine.
OUTPUTS = {
    STATE_MACHINE_NAME: "BuildEnvironmentStateMachineArn",
    TEARDOWN_STATE_MACHINE_NAME: "TeardownEnvironmentStateMachineArn",
}
#: Standard retry mode (throttling and 5xx retried with backoff); AWS_MAX_ATTEMPTS sets the attempts.
CONFIG = Config(retries={"mode": "standard"}, user_agent_extra="envbuild-cli")

THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
)
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
BAD_CREDENTIALS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
    }
)
#: IAM action prefix of each operation the CLI calls (for the AccessDenied line).
IAM_PREFIX = {
    "DescribeStacks": "cloudformation",
    "StartExecution": "states",
    "DescribeExecution": "states",
    "DescribeStateMachineForExecution": "states",
    "GetExecutionHistory": "states",
    "ListExecutions": "states",
    "GetItem": "dynamodb",
    "DeleteItem": "dynamodb",
}


# -- the session and its errors -----------------------------------------------------------------
@dataclass
class Aws:
    """Clients of one account and region (AWS, or the emulator at `endpoint`)."""

    session: Any
    region: str
    endpoint: str | None

    def client(self, service: str) -> Any:
        return self.session.client(
            service, region_name=self.region, endpoint_url=self.endpoint, config=CONFIG
        )


def connect(args: argparse.Namespace, region: str | None = None) -> Aws:
    try:
        session = boto3.session.Session(profile_name=args.profile)
    except botocore.exceptions.ProfileNotFound as error:
        raise CliError(
            f"AWS profile {args.profile!r} not found: list yours with `aws configure list-profiles`"
        ) from error
    chosen = args.region or region or session.region_name
    if not chosen:
        raise CliError(
            "no AWS region: pass --region, or set AWS_REGION (or a region in your AWS profile)"
        )
    return Aws(session, chosen, args.endpoint)


def one_line(error: Exception, where: str) -> CliError:
    """The AWS error a user can act on, in one line (no traceback)."""
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return CliError(
            "no AWS credentials found: run `aws configure` or `aws sso login`, or pass --profile"
        )
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        return CliError(f"cannot reach AWS in {where}: {error}")
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        message = str(details.get("Message", "")).strip()
        operation = error.operation_name
        attempts = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        if code in DENIED:
            action = f"{IAM_PREFIX.get(operation, 'aws')}:{operation}"
            return CliError(
                f"access denied: your credentials may not call {action} in {where} ({message})"
            )
        if code in THROTTLING:
            return CliError(
                f"AWS throttled {operation} in {where} ({code}, {attempts + 1} attempts): "
                "wait a minute and retry, or set AWS_MAX_ATTEMPTS higher"
            )
        if code in BAD_CREDENTIALS:
            return CliError(f"AWS rejected the credentials ({code}): {message}; refresh them")
        return CliError(f"{operation} failed in {where}: {code}: {message}")
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return CliError(f"AWS request failed in {where}: {error}")
    raise error


@contextmanager
def aws_errors(aws: Aws) -> Iterator[None]:
    where = f"{aws.region}" + (f" at {aws.endpoint}" if aws.endpoint else "")
    try:
        yield
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise one_line(error, where) from error
    except StillRunning as running:
        raise CliError(
            f"stopped following: the execution is still RUNNING past its own timeout; "
            f"attach again with `envbuild watch {running}`"
        ) from running


# -- the stack ----------------------------------------------------------------------------------
def stack_outputs(cloudformation: Any, stack_name: str, region: str) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except botocore.exceptions.ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if "does not exist" in message:
            raise CliError(
                f"no stack {stack_name} in {region}: deploy it with `sam deploy --guided`, "
                "or pass the right --stack-name / --region / --profile"
            ) from error
        raise
    stack = stacks[0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    outputs["StackStatus"] = str(stack.get("StackStatus", ""))
    return outputs


def output(outputs: Mapping[str, str], key: str, stack_name: str) -> str:
    if key in outputs:
        return outputs[key]
    status = outputs.get("StackStatus", "")
    have = ", ".join(sorted(k for k in outputs if k != "StackStatus")) or "none"
    raise CliError(
        f"stack {stack_name} ({status}) has no output {key}: it is not an envbuild stack "
        f"(template.yaml), or it has not finished deploying (its outputs: {have})"
    )


@contextmanager
def stack_target(args: argparse.Namespace) -> Iterator[Target]:
    """`envbuild run|teardown --stack-name`: where the CLI's commands run on a deployed stack."""
    aws = connect(args)
    with aws_errors(aws):
        outputs = stack_outputs(aws.client("cloudformation"), args.stack_name, aws.region)
        output(outputs, OUTPUTS[STATE_MACHINE_NAME], args.stack_name)  # checked before the spec
        sfn = aws.client("stepfunctions")
        started: dict[str, Any] = {}

        def seconds(event: Mapping[str, Any]) -> float:
            if "at" not in started:  # the first event is ExecutionStarted
                started["at"] = event["timestamp"]
            return since_start(started["at"]).seconds(event)

        yield Target(
            sfn,
            lambda name: output(outputs, OUTPUTS[name], args.stack_name),
            {},  # ${VARS} come from the environment only
            Clock(seconds, "Step Functions' event times"),
            AWS,
        )


# -- watch --------------------------------------------------------------------------------------
def region_of(arn: str) -> str | None:
    parts = arn.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "states" or parts[5] != "execution":
        raise CliError(
            f"{arn!r} is not an execution ARN (arn:<partition>:states:<region>:<account>:"
            "execution:<state machine>:<name>)"
        )
    return parts[3] or None


def watch(args: argparse.Namespace, out: TextIO) -> int:
    """Follow any execution of the stack (build, plan, teardown, prune, rollback) to its end."""
    aws = connect(args, region_of(args.execution_arn))
    progress = progress_stream(args, out)
    with aws_errors(aws):
        sfn = aws.client("stepfunctions")
        described = sfn.describe_execution(executionArn=args.execution_arn)
        progress.write(
            f"Execution {described['name']} of {described['stateMachineArn'].split(':')[-1]}"
            f" ({described['status']}, started {described['startDate']:%Y-%m-%d %H:%M:%S %Z})\n"
        )
        described = follow(
            sfn,
            args.execution_arn,
            progress,
            since_start(described["startDate"], "Step Functions' event times"),
            AWS,
        )
        return finish(sfn, described, args, out)


# -- history ------------------------------------------------------------------------------------
def add_aws_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--region", help="AWS region (default: your profile's / AWS_REGION)")
    command.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    command.add_argument("--endpoint", help="endpoint URL (e.g. a running `envbuild emulator`)")


def add_commands(commands: Any) -> None:
    from envbuild.history import history

    watch_cmd = commands.add_parser(
        "watch", help="follow an execution (started anywhere) to its end, with the summary"
    )
    watch_cmd.add_argument("execution_arn", help="the execution's ARN (console, event, or CLI)")
    add_aws_arguments(watch_cmd)
    watch_cmd.add_argument(
        "--env-file", help="where a build writes resource ids (default <environment>-resources.env)"
    )
    add_output_argument(watch_cmd)
    watch_cmd.set_defaults(handler=watch)
    history_cmd = commands.add_parser(
        "history", help="recent builds and teardowns of an environment: status, start, duration"
    )
    history_cmd.add_argument("environment", help="the spec's environment name")
    history_cmd.add_argument(
        "--stack-name",
        default=DEFAULT_STACK_NAME,
        help="the envbuild stack (default %(default)s)",
    )
    history_cmd.add_argument(
        "--limit", type=int, default=10, help="rows to show (default %(default)s)"
    )
    add_aws_arguments(history_cmd)
    history_cmd.set_defaults(handler=history)
    from envbuild.unlock import unlock

    unlock_cmd = commands.add_parser(
        "unlock",
        help="release an environment's lock whose build or teardown no longer runs (asks first)",
    )
    unlock_cmd.add_argument("environment", help="the spec's environment name")
    unlock_cmd.add_argument(
        "--stack-name",
        default=DEFAULT_STACK_NAME,
        help="the envbuild stack (default %(default)s)",
    )
    unlock_cmd.add_argument("--yes", action="store_true", help="release without asking")
    add_aws_arguments(unlock_cmd)
    unlock_cmd.set_defaults(handler=unlock)
