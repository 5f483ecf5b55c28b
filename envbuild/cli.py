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
import socket
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
from urllib.parse import urlsplit

import boto3

from envbuild.follow import EMULATOR, Clock, Polling, follow
from envbuild.report import (
    ACTIONS,
    Result,
    collect,
    error_message,
    from_history,
    write_json,
    write_table,
)
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


#: Step Functions' limit on an execution's input, UTF-8 bytes (StartExecution's ``input``:
#: https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
MAX_EXECUTION_INPUT_BYTES = 262_144


def execution_input(document: Mapping[str, Any], source: object) -> str:
    """The document as StartExecution's input (compact JSON), or a CliError naming ``source``
    when Step Functions would refuse it for its size (InvalidExecutionInput)."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode("utf-8"))
    if size > MAX_EXECUTION_INPUT_BYTES:
        raise CliError(
            f"{source}: the spec is {size:,} bytes as compact JSON; Step Functions accepts at most"
            f" {MAX_EXECUTION_INPUT_BYTES:,} bytes (256 KiB) as an execution's input: split the"
            " environment into smaller ones, or shorten what every service repeats"
            " (environment values, tags)"
        )
    return text


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
    execution_input(
        _parsed(path, VARIABLE.sub(lambda m: "1".ljust(len(m.group(0)), "0"), text)), path
    )
    return text


def load_spec(path: Path, *sources: Mapping[str, str]) -> dict[str, Any]:
    return _parsed(path, fill_variables(read_spec(path), *sources))


def execution_name(spec: Mapping[str, Any]) -> str:
    environment = (
        re.sub(r"[^a-z0-9-]", "-", str(spec.get("environment", "build")).lower())[:40] or "build"
    )
    return f"{environment}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


# -- following an execution: envbuild/follow.py ------------------------------------------------


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
    services = summary.get("services") or []
    width = max((len(s["dnsName"]) for s in services), default=0)
    for service in services:
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


def print_build_details(result: Result, out: TextIO) -> None:
    """After a build's summary: what changed, what runs outside the spec, the probe, the prune."""
    summary = result.summary or {}
    if result.changes:
        out.write("\nChanges:\n")
        write_table(result.changes, out)
    counts = summary.get("counts") or {}
    if counts:
        out.write(
            "\n"
            + ", ".join(f"{counts[action]} {action}" for action in ACTIONS if counts.get(action))
            + (
                f" ({summary['changesOmitted']} changed rows not shown: see --output json)"
                if summary.get("changesOmitted")
                else ""
            )
            + ".\n"
        )
    not_in_spec = summary.get("notInSpec") or []
    if not_in_spec:
        out.write(
            f'\nNot in the spec (left running; "prune": true removes them): '
            f"{', '.join(map(str, not_in_spec))}\n"
        )
    if result.pruned:
        out.write(f"\nPrune: {result.pruned}\n")
    probe = summary.get("probe") or {}
    if probe.get("requested"):
        out.write(f"\nDNS probe: {probe.get('message', '')}\n")
        for name, answers in (probe.get("answers") or {}).items():
            out.write(f"  {name}  ->  {', '.join(answers) or '(no answer)'}\n")


# -- --endpoint ---------------------------------------------------------------------------------
#: How long the CLI waits for a TCP connection to --endpoint before saying nothing answers.
ENDPOINT_CONNECT_SECONDS = 2.0


def check_endpoint(url: str) -> str:
    """--endpoint, checked at once (no SDK retries): a URL with a scheme, where something
    listens. Each problem is one line with the fix."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        bare = url.split("://", 1)[-1]
        raise CliError(
            f"--endpoint {url!r} is not an http(s) URL: use --endpoint http://{bare}"
            " (`envbuild emulator` prints its URL, by default http://127.0.0.1:5000)"
        )
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError as error:
        raise CliError(f"--endpoint {url!r}: {error}") from error
    try:
        with socket.create_connection((parsed.hostname, port), timeout=ENDPOINT_CONNECT_SECONDS):
            pass
    except ConnectionRefusedError as error:
        raise CliError(
            f"nothing listens at {parsed.hostname}:{port} (--endpoint {url}): start the emulator"
            " with `make emulator` (or `.venv/bin/envbuild emulator --port N`) and pass the URL"
            " it prints"
        ) from error
    except TimeoutError as error:
        raise CliError(
            f"no answer from {parsed.hostname}:{port} within {ENDPOINT_CONNECT_SECONDS:.0f} s"
            f" (--endpoint {url}): check the host and port"
        ) from error
    except OSError as error:
        raise CliError(
            f"cannot connect to {parsed.hostname}:{port} (--endpoint {url}): {error.strerror or error}"
        ) from error
    return url


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
    #: The embedded emulator, when there is one (make docs arms its faults for a sample).
    emulator: Any = None

    def load_spec(self, path: Path) -> dict[str, Any]:
        """The spec with its ${VARS} filled: from the environment, then the emulator's
        prerequisites; on the embedded emulator (a fresh account) its own ids come first, so ids
        exported for another account (a served emulator, AWS) do not leak into it."""
        if self.emulator is not None:
            return load_spec(path, self.prerequisites, os.environ)
        return load_spec(path, os.environ, self.prerequisites)


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
            Clock(lambda _event: time.monotonic() - t0, "wall time"),
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

        def emulated(event: Mapping[str, Any]) -> float:
            """Emulated seconds since the execution's first event was shown: at time scale 0 the
            emulator stamps each history event with the AWS time the build models (the clock's
            time otherwise)."""
            stamp = event.get("timestamp")
            now: Any = stamp if isinstance(stamp, datetime) else emulator.clock.now()
            if not started or event.get("type") == "ExecutionStarted":
                started[:] = [now]
            if isinstance(now, datetime) and isinstance(started[0], datetime):
                return (now - started[0]).total_seconds()
            if isinstance(now, datetime) or isinstance(started[0], datetime):
                return 0.0
            return float(now - started[0])

        yield Target(
            emulator.client("stepfunctions"),
            machines.__getitem__,
            emulator.prerequisites,
            Clock(emulated, "modelled AWS time on the embedded emulator"),
            emulator=emulator,
        )


def progress_stream(args: argparse.Namespace, out: TextIO) -> TextIO:
    """Where progress goes: stdout, or stderr when stdout carries the JSON document."""
    return sys.stderr if getattr(args, "output", "text") == "json" else out


def run(args: argparse.Namespace, out: TextIO) -> int:
    read_spec(Path(args.spec))  # a bad file is reported before an emulator starts
    progress = progress_stream(args, out)
    with target(args, progress) as where:
        spec = where.load_spec(Path(args.spec))
        if getattr(args, "redeploy", False):  # this run only: the spec file is left as it is
            spec = {**spec, "redeploy": True}
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
    """Start an execution and follow it; progress goes to ``out`` (stderr for --output json)."""
    name = args.name or execution_name(document)
    text = execution_input(document, f"environment {document.get('environment')}")
    arn = sfn.start_execution(stateMachineArn=state_machine, name=name, input=text)["executionArn"]
    out.write(f"{verb} environment {document.get('environment')} (execution {name})\n")
    return follow(sfn, arn, out, clock, polling)


def rollback_outcome(history: list[dict[str, Any]]) -> str | None:
    return from_history(history)[0]


def teardown_document(spec: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    return {
        **spec,
        "deleteLogGroups": args.delete_log_groups,
        "deregisterTaskDefinitions": args.deregister_task_definitions,
    }


def teardown(args: argparse.Namespace, out: TextIO, stdin: TextIO | None = None) -> int:
    """Remove what envbuild manages for the spec's environment. ``--plan``: only say what would
    be removed, kept or refused. Otherwise on a terminal: the plan first, then a question (``--yes``
    skips it); without a terminal ``--yes`` is required (nothing prompts a script)."""
    stdin = stdin if stdin is not None else sys.stdin
    read_spec(Path(args.spec))
    progress = progress_stream(args, out)
    ask = not args.plan and not args.yes
    if ask and not (stdin.isatty() and progress.isatty() and args.output == "text"):
        raise CliError(
            "teardown removes resources: pass --yes to confirm without a terminal"
            " (see first what it would remove with --plan)"
        )
    with target(args, progress) as where:
        spec = where.load_spec(Path(args.spec))
        machine = where.state_machine(TEARDOWN_STATE_MACHINE_NAME)
        document = teardown_document(spec, args)
        if args.plan or ask:
            described = start_and_follow(
                where.sfn,
                machine,
                {**document, "planOnly": True},
                args,
                progress,
                where.clock,
                "Planning the teardown of",
                where.polling,
            )
            code = finish(where.sfn, described, args, out)
            if args.plan or code != 0:
                return code
            result = collect(described, [])
            if not any(row["action"] == "remove" for row in result.changes):
                return 0
            if not confirm("Remove these resources?", stdin, out):
                out.write("Nothing was removed.\n")
                return 1
            args.name = None  # the plan's name is taken
        described = start_and_follow(
            where.sfn,
            machine,
            document,
            args,
            progress,
            where.clock,
            "Tearing down",
            where.polling,
        )
        return finish(where.sfn, described, args, out)


def confirm(question: str, stdin: TextIO, out: TextIO) -> bool:
    out.write(f"\n{question} [y/N] ")
    out.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


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
        ("SSM parameters", removed.get("parameters", [])),
    ]
    for label, values in rows:
        if values:
            out.write(f"  removed {label}: {', '.join(values)}\n")
    for kept in summary.get("kept", []):
        out.write(f"  kept {kept['type']} {kept['name']} ({kept['id']}): {kept['reason']}\n")
    for note in summary.get("notes", []):
        out.write(f"  note: {note}\n")


def print_teardown_plan(result: Result, out: TextIO) -> None:
    plan = (result.summary or {}).get("plan") or {}
    out.write(f"\nTeardown plan for environment {result.environment} (nothing was removed):\n")
    if result.changes:
        write_table(result.changes, out)
    for note in plan.get("notes", []):
        out.write(f"  note: {note}\n")
    out.write(f"\n{result.message}.\n")


def build(
    sfn: Any,
    state_machine: str,
    spec: dict[str, Any],
    args: argparse.Namespace,
    out: TextIO,
    clock: Clock,
    polling: Polling = EMULATOR,
) -> int:
    progress = progress_stream(args, out)
    described = start_and_follow(
        sfn, state_machine, spec, args, progress, clock, "Building", polling
    )
    return finish(sfn, described, args, out)


#: What each kind of execution is called in a failure line.
WHAT = {
    "build": "Build",
    "plan": "Plan",
    "teardown": "Teardown",
    "teardown-plan": "Teardown plan",
    "prune": "Prune",
    "rollback": "Rollback",
}


def report_failure(described: Mapping[str, Any], what: str, out: TextIO) -> int:
    error = described.get("error", described["status"])
    cause = error_message(described.get("cause", ""))
    out.write(f"\n{what} {described['status']}: {error}: {cause}\n")
    return 1


def finish(sfn: Any, described: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    """A stopped execution, reported: text (summary, then the changes) or one JSON document.
    A build that succeeded writes its env file either way. Exit code 0, or 1 on failure."""
    history = execution_history(sfn, described["executionArn"])
    result = collect(described, history)
    env_file: Path | None = None
    if result.succeeded and result.kind == "build" and result.summary:
        env_file = Path(
            getattr(args, "env_file", None) or f"{result.summary['environment']}-resources.env"
        )
        env_file.write_text(resources_env(result.summary))
        result.extra["envFile"] = str(env_file)
    if getattr(args, "output", "text") == "json":
        write_json(result, out)
        return 0 if result.succeeded else 1
    if not result.succeeded:
        out.write(
            f"\n{WHAT.get(result.kind, 'Execution')} {result.status}: {result.error}: {result.cause}\n"
        )
        if result.rollback:
            out.write(f"Rollback: {result.rollback}\n")
        return 1
    summary = result.summary or {}
    if result.kind == "build":
        print_summary(summary, out)
        print_build_details(result, out)
        out.write(
            f"\nResource ids written to {env_file} (source it as the workshop's step 8 does).\n"
        )
    elif result.kind == "plan":
        from envbuild.plan import print_plan

        print_plan(result, out)
    elif result.kind == "teardown-plan":
        print_teardown_plan(result, out)
    elif "removed" in summary:
        print_teardown_summary(summary, out)
    else:
        out.write(f"\n{result.message}\n")
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
    add_output_argument(command)


def add_output_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text (default), or json: one JSON document on stdout, progress on stderr",
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
    run_cmd.add_argument(
        "--redeploy",
        action="store_true",
        help="start a new deployment of every ECS service even if the spec did not change (a"
        " mutable image tag such as :latest that moved); this run only",
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
    down_cmd.add_argument(
        "--plan",
        action="store_true",
        help="only show what would be removed, kept or refused (removes nothing)",
    )
    down_cmd.add_argument(
        "--yes",
        action="store_true",
        help="remove without asking (required without a terminal)",
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


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    args = parser().parse_args(argv)
    try:
        if getattr(args, "endpoint", None):
            args.endpoint = check_endpoint(args.endpoint)
        from envbuild.plan import plan  # envbuild.plan builds on this module

        commands = {"run": run, "plan": plan, "teardown": teardown, "emulator": serve}
        command = commands.get(args.command) or args.handler
        return int(command(args, out))
    except CliError as error:
        sys.stderr.write(f"envbuild: {error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
