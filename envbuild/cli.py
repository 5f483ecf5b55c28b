"""`envbuild`: run a build on the embedded emulator or a running one, or serve the emulator.

envbuild run SPEC                      build on an embedded emulated account
envbuild run SPEC --endpoint URL       build on a running `envbuild emulator`
envbuild plan SPEC [--endpoint URL]    what a build would create / adopt / update / delete (and conflicts)
envbuild teardown SPEC [--endpoint URL] [--delete-log-groups] [--deregister-task-definitions]
                                       remove what envbuild manages for the spec's environment
envbuild emulator [--port N]           serve the emulated account on 127.0.0.1:N

On a deployed stack (AWS, or the emulator's stack "envbuild" with --endpoint):
envbuild run SPEC --stack-name NAME [--region R] [--profile P]
envbuild watch EXECUTION_ARN           follow an execution started anywhere (console, event)
envbuild history ENVIRONMENT [--stack-name NAME]
                                       recent builds and teardowns: status, start, duration
envbuild unlock ENVIRONMENT [--yes]    release a lock whose build or teardown no longer runs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import boto3

from envbuild.follow import EMULATOR, Clock, Polling, follow
from envbuild_emulator.emulator import execution_history

STATE_MACHINE_NAME = "envbuild-BuildEnvironmentStateMachine"
TEARDOWN_STATE_MACHINE_NAME = "envbuild-TeardownEnvironmentStateMachine"
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
DEFAULT_TIME_SCALE = 0.02  # 60 emulated seconds (a Cloud Map namespace) take 1.2 s
#: `run` / `teardown` on the embedded emulator: time moves only through the workflow's waits, so
#: the timeline shows the AWS time the build models (not the handlers' CPU time scaled up).
DEFAULT_RUN_TIME_SCALE = 0.0


class CliError(Exception):
    """An error reported in one line, exit code 2."""


# -- spec ---------------------------------------------------------------------------------------
def fill_variables(text: str, *sources: Mapping[str, str]) -> str:
    """Replace ${NAME} from the first source that has it; every missing name is reported at once."""
    missing = sorted(
        {name for name in VARIABLE.findall(text) if not any(name in s for s in sources)}
    )
    if missing:
        raise CliError(
            f"the spec uses {', '.join('${' + m + '}' for m in missing)}: set them in the environment"
        )

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return next(source[name] for source in sources if name in source)

    return VARIABLE.sub(value, text)


def _parsed(path: Path, text: str) -> dict[str, Any]:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from error
    if not isinstance(spec, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
        raise CliError(
            f"{path}: the spec must be a JSON object {{…}}, got {kind.get(type(spec), 'a number')}"
        )
    return spec


def read_spec(path: Path) -> str:
    """The spec file's text, checked before anything starts: readable, UTF-8, a JSON object
    (each ${VAR} stands in as a number of its length, so positions in errors are the file's)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise CliError(f"cannot read spec {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise CliError(
            f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} on line {line}):"
            " save the spec as UTF-8"
        ) from None
    _parsed(path, VARIABLE.sub(lambda m: "1".ljust(len(m.group(0)), "0"), text))
    return text


def load_spec(path: Path, *sources: Mapping[str, str]) -> dict[str, Any]:
    return _parsed(path, fill_variables(read_spec(path), *sources))


def execution_name(spec: Mapping[str, Any]) -> str:
    environment = (
        re.sub(r"[^a-z0-9-]", "-", str(spec.get("environment", "build")).lower())[:40] or "build"
    )
    return f"{environment}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


# -- following an execution: envbuild/follow.py ------------------------------------------------


def error_message(cause: str) -> str:
    """A Lambda error's Cause is JSON ({errorType, errorMessage, stackTrace}); show its message."""
    try:
        parsed = json.loads(cause)
    except (TypeError, json.JSONDecodeError):
        return cause
    return str(parsed.get("errorMessage", cause)) if isinstance(parsed, dict) else cause


def env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def arn_of(namespace_arn: str, service: str, resource: str) -> str:
    """An ARN in the namespace's partition, Region and account (the build's summary carries ids
    and names; ARNs follow from them)."""
    partition, _service, region, account = namespace_arn.split(":")[1:5]
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def resources_env(summary: Mapping[str, Any]) -> str:
    """The workshop's step 8 env file: NAMESPACE_ID, <NAME>_SERVICE_ID, … (the names and ids of
    the build's ``outputs``, its SSM parameters and its Environment Ready event), plus the ARNs
    and names that follow from them."""
    namespace = summary["namespace"]
    cluster = summary["cluster"]
    lines = [
        f"export NAMESPACE_ID={namespace['id']}",
        f"export NAMESPACE_ARN={namespace['arn']}",
        f"export NAMESPACE_NAME={namespace['name']}",
        f"export HOSTED_ZONE_ID={namespace.get('hostedZoneId') or ''}",
    ]
    for service in summary["services"]:
        prefix = env_name(service["name"])
        registry_id = summary["outputs"][f"{prefix}_SERVICE_ID"]
        lines += [
            f"export {prefix}_SERVICE_ID={registry_id}",
            f"export {prefix}_SERVICE_ARN="
            + arn_of(namespace["arn"], "servicediscovery", f"service/{registry_id}"),
            f"export {prefix}_ECS_SERVICE_ARN="
            + arn_of(namespace["arn"], "ecs", f"service/{cluster}/{service['name']}-service"),
            f"export {prefix}_TASK_DEFINITION_ARN="
            + arn_of(namespace["arn"], "ecs", f"task-definition/{service['taskDefinition']}"),
            f"export {prefix}_DNS_NAME={service['dnsName']}",
        ]
    return "\n".join(lines) + "\n"


def print_summary(summary: Mapping[str, Any], out: TextIO) -> None:
    namespace = summary["namespace"]
    adopted = " (adopted)" if namespace.get("adopted") else ""
    out.write(f"\nEnvironment {summary['environment']} is ready.\n")
    out.write(
        f"  namespace {namespace['name']}  {namespace['id']}{adopted}  hosted zone {namespace.get('hostedZoneId')}\n"
    )
    width = max(len(s["dnsName"]) for s in summary["services"])
    for service in summary["services"]:
        ips = ", ".join(service["ips"]) or "(no tasks)"
        out.write(f"  {service['dnsName']:<{width}}  ->  {ips}\n")
        for instance in service.get("staticInstances", []):
            custom = {
                k: v for k, v in instance.get("attributes", {}).items() if k != "AWS_INSTANCE_IPV4"
            }
            attributes = ", ".join(f"{k}={v}" for k, v in custom.items())
            out.write(
                f"  {'':<{width}}      static {instance['id']} {instance['ipv4']} HEALTHY"
                f"{'  ' + attributes if attributes else ''}\n"
            )


# -- commands -----------------------------------------------------------------------------------
def find_state_machine(sfn: Any, name: str = STATE_MACHINE_NAME) -> str:
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                return str(machine["stateMachineArn"])
    raise CliError(
        f"no state machine {name} at the endpoint: is `envbuild emulator` running there?"
    )


@dataclass
class Target:
    """Where a command runs: a served emulator (--endpoint) or an embedded one."""

    sfn: Any
    state_machine: Callable[[str], str]  # state machine name -> ARN
    prerequisites: Mapping[str, str]
    clock: Clock
    polling: Polling = EMULATOR


@contextmanager
def target(args: argparse.Namespace, out: TextIO) -> Iterator[Target]:
    if getattr(args, "stack_name", None):  # a deployed stack (AWS, or the emulator's)
        from envbuild.stack import stack_target

        with stack_target(args) as where:
            yield where
        return
    if args.endpoint:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(key, "testing")
        region = args.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        session = boto3.session.Session()

        def client(service: str) -> Any:
            return session.client(service, region_name=region, endpoint_url=args.endpoint)

        from envbuild_emulator.seed import read_prerequisites

        try:
            sfn = client("stepfunctions")
            find_state_machine(sfn)
            prerequisites = read_prerequisites(client)
        except CliError:
            raise
        except Exception as error:
            raise CliError(f"cannot reach the emulator at {args.endpoint}: {error}") from error
        t0 = time.monotonic()
        yield Target(
            sfn,
            lambda name: find_state_machine(sfn, name),
            prerequisites,
            lambda _event: f"{time.monotonic() - t0:6.1f}s",
        )
        return

    from envbuild_emulator.emulator import Emulator

    emulator = Emulator(time_scale=args.time_scale, region=args.region or "us-east-1")
    out.write("Starting the embedded emulated AWS account…\n")
    with emulator:
        machines = {
            STATE_MACHINE_NAME: emulator.state_machine_arn,
            TEARDOWN_STATE_MACHINE_NAME: emulator.teardown_state_machine_arn,
        }
        started: list[Any] = []

        def emulated(event: Mapping[str, Any]) -> str:
            """Emulated seconds since the execution's first event was shown: at time scale 0 the
            emulator stamps each history event with the AWS time the build models."""
            stamp = event.get("timestamp")
            if not isinstance(stamp, datetime):
                return "t+    ?s"
            if not started:
                started.append(stamp)
            return f"t+{(stamp - started[0]).total_seconds():5.0f}s"

        yield Target(
            emulator.client("stepfunctions"),
            machines.__getitem__,
            emulator.prerequisites,
            emulated,
        )


def run(args: argparse.Namespace, out: TextIO) -> int:
    read_spec(Path(args.spec))  # a bad file is reported before an emulator starts
    with target(args, out) as where:
        spec = load_spec(Path(args.spec), os.environ, where.prerequisites)
        return build(
            where.sfn,
            where.state_machine(STATE_MACHINE_NAME),
            spec,
            args,
            out,
            where.clock,
            polling=where.polling,
        )


def start_and_follow(
    sfn: Any,
    state_machine: str,
    document: Mapping[str, Any],
    args: argparse.Namespace,
    out: TextIO,
    clock: Clock,
    verb: str,
    polling: Polling = EMULATOR,
) -> dict[str, Any]:
    name = args.name or execution_name(document)
    arn = sfn.start_execution(stateMachineArn=state_machine, name=name, input=json.dumps(document))[
        "executionArn"
    ]
    out.write(f"{verb} environment {document.get('environment')} (execution {name})\n")
    return follow(sfn, arn, out, clock, polling)


#: The states of a failed build that record what happened to what it had created.
ROLLBACK_STATES = ("Roll Back", "Rollback Failed", "Keep What Was Built", "Nothing Was Created")


def rollback_outcome(history: list[dict[str, Any]]) -> str | None:
    for event in reversed(history):
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") in ROLLBACK_STATES:
            rollback = json.loads(details.get("output") or "{}").get("rollback") or {}
            return str(rollback.get("outcome")) if rollback.get("outcome") else None
    return None


def report_failure(described: Mapping[str, Any], what: str, out: TextIO) -> int:
    error = described.get("error", described["status"])
    cause = error_message(described.get("cause", ""))
    out.write(f"\n{what} {described['status']}: {error}: {cause}\n")
    return 1


def teardown(args: argparse.Namespace, out: TextIO) -> int:
    read_spec(Path(args.spec))
    with target(args, out) as where:
        spec = load_spec(Path(args.spec), os.environ, where.prerequisites)
        document = {
            **spec,
            "deleteLogGroups": args.delete_log_groups,
            "deregisterTaskDefinitions": args.deregister_task_definitions,
        }
        described = start_and_follow(
            where.sfn,
            where.state_machine(TEARDOWN_STATE_MACHINE_NAME),
            document,
            args,
            out,
            where.clock,
            "Tearing down",
            where.polling,
        )
    if described["status"] != "SUCCEEDED":
        return report_failure(described, "Teardown", out)
    print_teardown_summary(json.loads(described["output"]), out)
    return 0


def print_teardown_summary(summary: Mapping[str, Any], out: TextIO) -> None:
    out.write(f"\nEnvironment {summary.get('environment')}: {summary['message']}.\n")
    removed = summary["removed"]
    namespace = removed.get("namespace")
    rows = [
        ("ECS services", removed.get("ecsServices", [])),
        ("Cloud Map instances", removed.get("instances", [])),
        ("Cloud Map services", removed.get("registries", [])),
        ("namespace", [f"{namespace['name']} ({namespace['id']})"] if namespace else []),
        ("log groups", removed.get("logGroups", [])),
        ("task definitions", removed.get("taskDefinitions", [])),
    ]
    for label, values in rows:
        if values:
            out.write(f"  removed {label}: {', '.join(values)}\n")
    for kept in summary.get("kept", []):
        out.write(f"  kept {kept['type']} {kept['name']} ({kept['id']}): {kept['reason']}\n")


def build(
    sfn: Any,
    state_machine: str,
    spec: dict[str, Any],
    args: argparse.Namespace,
    out: TextIO,
    clock: Clock,
    polling: Polling = EMULATOR,
) -> int:
    described = start_and_follow(sfn, state_machine, spec, args, out, clock, "Building", polling)
    return report_build(sfn, described, args, out)


def report_build(
    sfn: Any, described: Mapping[str, Any], args: argparse.Namespace, out: TextIO
) -> int:
    """A finished build: the summary and env file, or the Error, Cause and rollback outcome."""
    if described["status"] != "SUCCEEDED":
        code = report_failure(described, "Build", out)
        outcome = rollback_outcome(execution_history(sfn, described["executionArn"]))
        if outcome:
            out.write(f"Rollback: {outcome}\n")
        return code
    summary = json.loads(described["output"])
    print_summary(summary, out)
    env_file = Path(args.env_file or f"{summary['environment']}-resources.env")
    env_file.write_text(resources_env(summary))
    out.write(f"\nResource ids written to {env_file} (source it as the workshop's step 8 does).\n")
    return 0


def serve(args: argparse.Namespace, out: TextIO) -> int:
    from envbuild_emulator.emulator import Emulator

    emulator = Emulator(
        port=args.port, time_scale=args.time_scale, region=args.region or "us-east-1"
    )
    try:
        emulator.start()
    except OSError as error:
        raise CliError(str(error)) from error
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        out.write(f"envbuild emulator on {emulator.endpoint_url} (region {emulator.region})\n")
        out.write(f"State machine: {emulator.state_machine_arn}\n")
        out.write(f"Teardown state machine: {emulator.teardown_state_machine_arn}\n")
        out.write(f"Stack: {emulator.stack_name} (CloudFormation outputs name both)\n")
        out.write("\nPrerequisites:\n")
        for key, value in emulator.prerequisites.items():
            out.write(f"export {key}={value}\n")
        out.write(
            "\nTry:\n"
            f"  envbuild run events/workshop.json --endpoint {emulator.endpoint_url}\n"
            f"  envbuild run events/workshop.json --stack-name {emulator.stack_name}"
            f" --endpoint {emulator.endpoint_url}   (after exporting the variables above)\n"
            f"  aws --endpoint-url {emulator.endpoint_url} servicediscovery list-namespaces\n"
            f"  aws --endpoint-url {emulator.endpoint_url} events put-events"
            " --cli-input-json file://events/put-events-build-requested.json"
            " (after filling its ${VARS})\n"
            "Ctrl-C stops it.\n"
        )
        out.flush()
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


def add_execution_arguments(command: argparse.ArgumentParser, spec_help: str) -> None:
    """What `run` and `teardown` share: the spec, where to run it, and the execution's name."""
    command.add_argument("spec", help=spec_help)
    command.add_argument(
        "--endpoint", help="URL of a running `envbuild emulator` (default: embedded emulator)"
    )
    command.add_argument("--region", help="region (default us-east-1 on the emulator)")
    command.add_argument(
        "--stack-name",
        help="run on this deployed envbuild stack (its outputs name the state machines)",
    )
    command.add_argument("--profile", help="AWS profile for --stack-name (default: AWS_PROFILE)")
    command.add_argument("--name", help="execution name (default: <environment>-<time>-<random>)")
    command.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_RUN_TIME_SCALE,
        help="real seconds per emulated second for the embedded emulator (default %(default)s)",
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="envbuild", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = root.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="build the environment a spec describes")
    add_execution_arguments(run_cmd, "environment spec (JSON; ${VARS} filled from the environment)")
    run_cmd.add_argument(
        "--env-file", help="where to write resource ids (default <environment>-resources.env)"
    )
    plan_cmd = commands.add_parser("plan", help="show what a build would change (changes nothing)")
    add_execution_arguments(
        plan_cmd, "environment spec (JSON; ${VARS} filled from the environment)"
    )
    down_cmd = commands.add_parser(
        "teardown", help="remove what envbuild manages for the environment a spec describes"
    )
    add_execution_arguments(down_cmd, "the environment spec the build used (JSON; ${VARS} filled)")
    down_cmd.add_argument(
        "--delete-log-groups", action="store_true", help="also delete the /ecs/<family> log groups"
    )
    down_cmd.add_argument(
        "--deregister-task-definitions",
        action="store_true",
        help="also deregister the task definition revisions envbuild registered",
    )
    emu_cmd = commands.add_parser(
        "emulator", help="serve the emulated AWS account with envbuild deployed"
    )
    emu_cmd.add_argument(
        "--port", type=int, default=5000, help="port on 127.0.0.1 (default %(default)s; 0: any)"
    )
    emu_cmd.add_argument("--region", help="region (default us-east-1)")
    emu_cmd.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_TIME_SCALE,
        help="real seconds per emulated second (default %(default)s)",
    )
    from envbuild.stack import add_commands

    add_commands(commands)
    return root


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)
    try:
        from envbuild.plan import plan  # envbuild.plan builds on this module

        commands = {"run": run, "plan": plan, "teardown": teardown, "emulator": serve}
        command = commands.get(args.command) or args.handler
        return int(command(args, out))
    except CliError as error:
        sys.stderr.write(f"envbuild: {error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
