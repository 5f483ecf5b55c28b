"""``python -m bench.run``: builds on the emulator, measured against the modelled AWS critical path.

Runs one build per size N on a fresh in-process emulator (clock scale 0: only Wait states and
retry back-off move emulated time), re-runs it, times the handlers' imports, and prints the
results table and the issue-8 targets table (markdown).  With ``--out`` the two tables replace the
block between the ``bench:begin`` / ``bench:end`` markers of that file (text around it is kept).

N = 3 is events/workshop.json; other sizes are generated services (distinct names, desiredCount 1
or 2, the emulator's two private subnets).

What is counted (see docs/benchmark.md):
- AWS API calls: every request the emulated account served during the build (``aws_faults.calls``
  after minus before) for every service except ``stepfunctions``: the bench's own
  StartExecution/DescribeExecution calls are Step Functions calls, and the build's handlers make
  none.  Mutating = not Describe*/List*/Get*/Discover* (``aws_faults.is_mutating``).
- Lambda invocations: ``dispatcher.invocations`` after minus before.
- State transitions: ``*StateEntered`` events of the history.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "functions"
HANDLERS = FUNCTIONS / "envbuild_lambda" / "handlers"
BEGIN = "<!-- bench:begin (written by `make bench`; edit bench/run.py, not this block) -->"
END = "<!-- bench:end -->"
KIB = 1024

#: Where each modelled latency comes from (the defaults are envbuild_emulator.models.Latencies).
LATENCY_SOURCES = {
    "namespace_operation_seconds": (
        "Cloud Map CREATE_NAMESPACE operation (+ its Route 53 private hosted zone) to SUCCESS",
        "https://docs.aws.amazon.com/cloud-map/latest/dg/creating-namespaces.html",
    ),
    "task_start_seconds": (
        "Fargate task PROVISIONING -> RUNNING (ENI, image pull, container start)",
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html",
    ),
    "registration_seconds": (
        "ECS registering a RUNNING task's IP in its Cloud Map service",
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-discovery.html",
    ),
    "service_operation_seconds": (
        "other Cloud Map operations (RegisterInstance, DeleteNamespace, ...)",
        "https://docs.aws.amazon.com/cloud-map/latest/api/API_GetOperation.html",
    ),
    "task_stop_seconds": (
        "RUNNING task asked to stop -> STOPPED (container stopTimeout, default 30 s)",
        "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html",
    ),
}
QUOTA_SOURCE = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html"
#: On the critical path to DNS: namespace, then a task starts, then it is registered.
CRITICAL_PATH = ("namespace_operation_seconds", "task_start_seconds", "registration_seconds")
POLL_STATES = ("Check Namespace Operation", "Check Services")
BENCH_SERVICES = frozenset({"stepfunctions"})


# ------------------------------------------------------------------------------------- specs
def fill(text: str, variables: dict[str, str]) -> str:
    for key, value in variables.items():
        text = text.replace("${" + key + "}", value)
    return text


def workshop_spec(prerequisites: dict[str, str]) -> dict[str, Any]:
    text = (REPO / "events" / "workshop.json").read_text()
    return dict(json.loads(fill(text, prerequisites)))


def generated_spec(n: int, prerequisites: dict[str, str]) -> dict[str, Any]:
    """N services with distinct names, desiredCount 1 or 2, in the emulator's two subnets."""
    environment = f"bench{n}"
    return {
        "environment": environment,
        "namespace": {
            "name": f"{environment}.local",
            "vpcId": prerequisites["VPC_ID"],
            "description": f"envbuild benchmark, {n} services",
        },
        "cluster": prerequisites["CLUSTER_NAME"],
        "network": {
            "subnets": [prerequisites["PRIVATE_SUBNET_1"], prerequisites["PRIVATE_SUBNET_2"]],
            "securityGroups": [prerequisites["ECS_SG"]],
            "assignPublicIp": "DISABLED",
        },
        "services": [
            {
                "name": f"svc{index:03d}",
                "image": "nginx:latest",
                "port": 80,
                "desiredCount": 1 + index % 2,
                "cpu": "256",
                "memory": "512",
                "environment": {"PEER": f"svc{(index + 1) % n:03d}.{environment}.local"},
                "dnsTtl": 60,
            }
            for index in range(n)
        ],
    }


# ------------------------------------------------------------------------------------- history
def state_transitions(history: list[dict[str, Any]]) -> int:
    return sum(1 for event in history if event["type"].endswith("StateEntered"))


def entered(history: list[dict[str, Any]], state: str) -> int:
    return sum(
        1
        for event in history
        if event["type"].endswith("StateEntered")
        and event["stateEnteredEventDetails"]["name"] == state
    )


def payloads(history: list[dict[str, Any]]) -> dict[str, int]:
    """Largest ``input``/``output`` (bytes) of any event, per state (Lambda events: their state)."""
    sizes: dict[str, int] = {}
    state = "(execution)"
    for event in history:
        for key, details in event.items():
            if not key.endswith("EventDetails") or not isinstance(details, dict):
                continue
            if key == "stateEnteredEventDetails":
                state = details.get("name", state)
            for part in ("input", "output"):
                value = details.get(part)
                if isinstance(value, str):
                    where = f"{details.get('name') or state} {part}"
                    sizes[where] = max(sizes.get(where, 0), len(value.encode()))
    return sizes


def throttling_errors(history: list[dict[str, Any]]) -> int:
    """Failed Lambda/Task events whose error names throttling (retried or not)."""
    total = 0
    for event in history:
        if not event["type"].endswith(("Failed", "TimedOut")):
            continue
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict):
                text = f"{details.get('error', '')} {details.get('cause', '')}"
                if "Throttl" in text or "TooManyRequests" in text:
                    total += 1
    return total


# ------------------------------------------------------------------------------------- builds
@dataclass
class Result:
    n: int
    label: str
    status: str = "not run"
    error: str = ""
    time_to_dns: float | None = None
    critical_path: float | None = None
    transitions: int | None = None
    polls: int | None = None
    invocations: int | None = None
    invocations_by_function: Counter[str] = field(default_factory=Counter)
    mutating_calls: int | None = None
    read_calls: int | None = None
    history_events: int | None = None
    largest_payload: int | None = None
    #: the four largest inputs/outputs: "<state> input|output" -> bytes
    payloads: dict[str, int] = field(default_factory=dict)
    spec_bytes: int | None = None
    calls_by_action: Counter[str] = field(default_factory=Counter)
    throttling_errors: int | None = None
    #: requests the emulated ECS quotas refused (each retried by the caller)
    throttled_calls: Counter[str] = field(default_factory=Counter)
    wall_seconds: float | None = None
    rerun_status: str = "not run"
    rerun_mutating: int | None = None
    rerun_mutating_actions: Counter[str] = field(default_factory=Counter)

    @property
    def ratio(self) -> float | None:
        if self.time_to_dns is None or not self.critical_path:
            return None
        return self.time_to_dns / self.critical_path


def _handler_calls(
    before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]
) -> Counter[tuple[str, str]]:
    delta = after - before
    return Counter({key: n for key, n in delta.items() if key[0] not in BENCH_SERVICES})


def run_size(n: int, latencies: Any, timeout: float) -> Result:
    from envbuild_emulator.aws_faults import is_mutating
    from envbuild_emulator.emulator import Emulator

    result = Result(n=n, label="3 (workshop)" if n == 3 else str(n))
    result.critical_path = sum(getattr(latencies, name) for name in CRITICAL_PATH)
    with Emulator(time_scale=0.0, latencies=latencies) as emu:
        spec = workshop_spec(emu.prerequisites) if n == 3 else generated_spec(n, emu.prerequisites)
        invocations0 = Counter(emu.dispatcher.invocations)
        calls0 = Counter(emu.aws_faults.calls)
        throttled0 = Counter(emu.throttling.throttled)
        clock0 = emu.clock.now()
        wall0 = time.perf_counter()
        arn = emu.start_build(spec)
        try:
            described = emu.wait(arn, timeout=timeout)
        except TimeoutError as error:
            result.status = "TIMED OUT"
            result.error = str(error)
            result.wall_seconds = time.perf_counter() - wall0
            return result
        result.wall_seconds = time.perf_counter() - wall0
        clock1 = emu.clock.now()
        calls = _handler_calls(calls0, Counter(emu.aws_faults.calls))
        invocations = Counter(emu.dispatcher.invocations) - invocations0
        result.status = described["status"]
        if result.status != "SUCCEEDED":
            result.error = f"{described.get('error', '')}: {described.get('cause', '')}"[:300]
        result.time_to_dns = clock1 - clock0
        result.invocations = sum(invocations.values())
        result.invocations_by_function = invocations
        result.mutating_calls = sum(n for (_, a), n in calls.items() if is_mutating(a))
        result.read_calls = sum(n for (_, a), n in calls.items() if not is_mutating(a))
        result.calls_by_action = Counter({f"{s}:{a}": n for (s, a), n in calls.items()})
        history = emu.history(arn)
        result.history_events = len(history)
        result.transitions = state_transitions(history)
        result.polls = sum(entered(history, state) for state in POLL_STATES)
        sizes = payloads(history)
        result.payloads = dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:4])
        result.largest_payload = max(sizes.values(), default=0)
        result.spec_bytes = len(json.dumps(spec).encode())
        result.throttling_errors = throttling_errors(history)
        result.throttled_calls = Counter(
            {f"{s}:{a}": n for (s, a), n in (emu.throttling.throttled - throttled0).items()}
        )
        if result.status != "SUCCEEDED":
            return result
        # Re-run of the built environment: everything exists, every step should adopt it.
        calls0 = Counter(emu.aws_faults.calls)
        rerun = emu.start_build(spec)
        try:
            result.rerun_status = emu.wait(rerun, timeout=timeout)["status"]
        except TimeoutError:
            result.rerun_status = "TIMED OUT"
            return result
        calls = _handler_calls(calls0, Counter(emu.aws_faults.calls))
        mutating = Counter({f"{s}:{a}": n for (s, a), n in calls.items() if is_mutating(a)})
        result.rerun_mutating = sum(mutating.values())
        result.rerun_mutating_actions = mutating
    return result


# ------------------------------------------------------------------------------------- imports
#: The functions' dependencies alone, as `sam build` packages them (but for this machine's
#: platform, so that they import here): the cold-start proxy must not see the dev venv's extra
#: packages (aws-sam-cli's awscrt makes `import botocore` slower, which flatters the ratio).
LAMBDA_PACKAGE = REPO / ".bench" / "lambda-package"


def lambda_package() -> Path:
    """functions/requirements.txt installed into LAMBDA_PACKAGE (again when it changes)."""
    requirements = FUNCTIONS / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = LAMBDA_PACKAGE / ".requirements.sha256"
    if stamp.is_file() and stamp.read_text() == digest:
        return LAMBDA_PACKAGE
    print(f"bench: installing {requirements.name} into {LAMBDA_PACKAGE} ...", file=sys.stderr)
    subprocess.run(  # noqa: S603 - our own interpreter, pinned requirements
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--upgrade", "--target", str(LAMBDA_PACKAGE), "-r", str(requirements),
        ],
        check=True,
    )  # fmt: skip
    stamp.write_text(digest)
    return LAMBDA_PACKAGE


def _import_seconds(module: str, env: dict[str, str]) -> float:
    code = (
        f"import time\nt = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - t)\n"
    )
    # -S: no site-packages (the venv's); only PYTHONPATH = the package and the function code.
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-S", "-c", code],
        env=env,
        cwd=FUNCTIONS,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


#: What every handler imports by design, none of envbuild's code: boto3, pydantic's BaseModel
#: (the input models) and Powertools' Logger and Metrics. Its ratio is the floor of the
#: cold-start proxy for this design: no handler can import faster.
DESIGN_FLOOR = "boto3, pydantic.main, aws_lambda_powertools.logging, aws_lambda_powertools.metrics"


@dataclass
class Imports:
    boto3: float
    handlers: dict[str, float]
    repeats: int
    #: median import of DESIGN_FLOOR
    floor: float

    @property
    def worst(self) -> tuple[str, float]:
        name = max(self.handlers, key=lambda h: self.handlers[h])
        return name, self.handlers[name]


def measure_imports(repeats: int) -> Imports:
    """Median over ``repeats`` fresh interpreters of each handler module's import and of boto3's."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        # the Lambda's CodeUri root and its packaged dependencies
        "PYTHONPATH": os.pathsep.join([str(FUNCTIONS), str(lambda_package())]),
        "PYTHONDONTWRITEBYTECODE": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",  # the template default (TraceAwsCalls false)
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    modules = sorted(p.stem for p in HANDLERS.glob("*.py") if p.stem not in {"__init__", "inputs"})
    # Warm the bytecode caches once: a deployed package ships compiled (or compiles once).
    for module in ["boto3", DESIGN_FLOOR, *(f"envbuild_lambda.handlers.{m}" for m in modules)]:
        _import_seconds(module, env)
    boto3_times: list[float] = []
    floor_times: list[float] = []
    handler_times: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(repeats):  # interleaved, so drift on a busy machine hits both alike
        boto3_times.append(_import_seconds("boto3", env))
        floor_times.append(_import_seconds(DESIGN_FLOOR, env))
        for module in modules:
            handler_times[module].append(_import_seconds(f"envbuild_lambda.handlers.{module}", env))
    return Imports(
        boto3=statistics.median(boto3_times),
        handlers={m: statistics.median(t) for m, t in handler_times.items()},
        repeats=repeats,
        floor=statistics.median(floor_times),
    )


# ------------------------------------------------------------------------------------- tables
def _fmt(value: float | int | None, spec: str = "") -> str:
    if value is None:
        return "—"
    return format(value, spec)


def machine() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 0
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Machine: `{platform.machine()}`, {cpus} CPUs (nproc), Python {platform.python_version()}"
        f" ({platform.python_implementation()}), {platform.system()} {platform.release()}."
        f" Date: {now}."
    )


def latencies_table(latencies: Any) -> str:
    from envbuild_emulator.throttling import default_quotas

    rows = ["| modelled latency | emulated s | on the critical path | what | source |"]
    rows.append("|---|---:|:---:|---|---|")
    for item in fields(latencies):
        what, source = LATENCY_SOURCES.get(item.name, ("", ""))
        on_path = "yes" if item.name in CRITICAL_PATH else ""
        value = getattr(latencies, item.name)
        rows.append(f"| `{item.name}` | {value:g} | {on_path} | {what} | {source} |")
    rows += [
        "",
        "| modelled quota (token bucket) | per second | burst | source |",
        "|---|---:|---:|---|",
    ]
    for (service, action), quota in default_quotas().items():
        rows.append(
            f"| {service}:{action} | {quota.per_second:g} | {quota.burst} | {QUOTA_SOURCE} |"
        )
    return "\n".join(rows)


def results_table(results: list[Result], imports: Imports | None) -> str:
    head = "| N services | " + " | ".join(r.label for r in results) + " |"
    rule = "|---|" + "---:|" * len(results)

    def row(name: str, cells: list[str]) -> str:
        return f"| {name} | " + " | ".join(cells) + " |"

    rows = [head, rule]
    rows.append(row("build status", [r.status for r in results]))
    rows.append(
        row(
            "time-to-DNS (emulated s) / critical path (s) = ratio",
            [
                f"{_fmt(r.time_to_dns, '.0f')} / {_fmt(r.critical_path, '.0f')} = "
                f"{_fmt(r.ratio, '.2f')}"
                for r in results
            ],
        )
    )
    rows.append(
        row(
            "state transitions (polls: Check Namespace Operation + Check Services)",
            [f"{_fmt(r.transitions)} ({_fmt(r.polls)} polls)" for r in results],
        )
    )
    rows.append(row("Lambda invocations", [_fmt(r.invocations) for r in results]))
    rows.append(
        row(
            "AWS API calls by the handlers: mutating / read",
            [f"{_fmt(r.mutating_calls)} / {_fmt(r.read_calls)}" for r in results],
        )
    )
    rows.append(row("history events", [_fmt(r.history_events) for r in results]))
    rows.append(
        row(
            "largest state input/output (bytes)",
            [
                f"{_fmt(r.largest_payload, ',')} ({_fmt(r.largest_payload / KIB, '.1f')} KiB)"
                if r.largest_payload is not None
                else "—"
                for r in results
            ],
        )
    )
    rows.append(
        row("throttling errors in the history", [_fmt(r.throttling_errors) for r in results])
    )
    rows.append(
        row(
            "calls refused by the emulated ECS quotas (then retried)",
            [str(sum(r.throttled_calls.values())) for r in results],
        )
    )
    rows.append(row("local wall seconds (build)", [_fmt(r.wall_seconds, ".1f") for r in results]))
    rows.append(
        row(
            "re-run of the built environment: mutating calls",
            [
                f"{_fmt(r.rerun_mutating)} ({r.rerun_status})"
                if r.rerun_mutating is not None
                else r.rerun_status
                for r in results
            ],
        )
    )
    if imports is not None:
        name, worst = imports.worst
        cell = (
            f"max `{name}` {worst * 1000:.0f} ms / `import boto3` {imports.boto3 * 1000:.0f} ms"
            f" = {worst / imports.boto3:.2f} (median of {imports.repeats} fresh interpreters);"
            f" design floor (boto3 + pydantic + Powertools, no envbuild code)"
            f" {imports.floor * 1000:.0f} ms = {imports.floor / imports.boto3:.2f}"
        )
        others = ["(same run, independent of N)"] * (len(results) - 1)
        rows.append(row("cold-start proxy: handler import / `import boto3`", [cell, *others]))
    return "\n".join(rows)


def details(results: list[Result], imports: Imports | None) -> str:
    lines = []
    for r in results:
        if r.status == "not run":
            continue
        lines.append(f"- N = {r.label}:")
        if r.error:
            lines.append(f"  - error: {r.error}")
        if r.payloads:
            by = ", ".join(f"{k} {v:,}" for k, v in r.payloads.items())
            lines.append(f"  - largest payloads (bytes): {by}; the spec alone {r.spec_bytes:,}")
        if r.calls_by_action:
            by = ", ".join(f"{k} {v}" for k, v in r.calls_by_action.most_common())
            lines.append(f"  - AWS calls: {by}")
        if r.invocations_by_function:
            by = ", ".join(f"{k} {v}" for k, v in sorted(r.invocations_by_function.items()))
            lines.append(f"  - invocations: {by}")
        if r.rerun_mutating_actions:
            by = ", ".join(f"{k} {v}" for k, v in sorted(r.rerun_mutating_actions.items()))
            lines.append(f"  - re-run mutating calls: {by}")
    if imports is not None:
        by = ", ".join(
            f"{name} {seconds * 1000:.0f}"
            for name, seconds in sorted(imports.handlers.items(), key=lambda kv: -kv[1])
        )
        lines.append(
            f"- handler import medians (ms): {by}; boto3 {imports.boto3 * 1000:.0f};"
            f" design floor ({DESIGN_FLOOR}) {imports.floor * 1000:.0f}"
        )
    return "\n".join(lines)


@dataclass
class Target:
    name: str
    target: str
    measured: str
    met: bool | None  # None: not measured


def targets(results: list[Result], imports: Imports | None) -> list[Target]:
    by_n = {r.n: r for r in results}
    out: list[Target] = []
    for n in (3, 20):
        r = by_n.get(n)
        ratio = r.ratio if r and r.status == "SUCCEEDED" else None
        out.append(
            Target(
                f"time-to-DNS, N = {n}",
                "≤ 1.10 x critical path",
                f"{ratio:.2f} x ({r.time_to_dns:.0f} s / {r.critical_path:.0f} s)"
                if r and ratio is not None and r.time_to_dns is not None and r.critical_path
                else "not measured",
                None if ratio is None else ratio <= 1.10,
            )
        )
    w = by_n.get(3)
    if w and w.transitions is not None and w.polls is not None:
        limit = 25 + 3 * w.polls
        out.append(
            Target(
                "workshop: state transitions",
                f"≤ 25 + 3 x polls = {limit} ({w.polls} polls)",
                str(w.transitions),
                w.transitions <= limit,
            )
        )
    else:
        out.append(Target("workshop: state transitions", "≤ 25 + 3 x polls", "not measured", None))
    if w and w.invocations is not None:
        limit = 2 * w.n + 8
        out.append(
            Target(
                "workshop: Lambda invocations",
                f"≤ 2N + 8 = {limit}",
                str(w.invocations),
                w.invocations <= limit,
            )
        )
    else:
        out.append(Target("workshop: Lambda invocations", "≤ 2N + 8", "not measured", None))
    big = by_n.get(200)
    measured = big is not None and big.history_events is not None
    out.append(
        Target(
            "N = 200: largest state payload",
            "< 64 KiB (65,536 bytes)",
            f"{big.largest_payload:,} bytes"
            if big and big.largest_payload is not None
            else "not measured",
            None if not measured or big.largest_payload is None else big.largest_payload < 64 * KIB,
        )
    )
    out.append(
        Target(
            "N = 200: history events",
            "< 5,000",
            f"{big.history_events:,}" if big and big.history_events is not None else "not measured",
            None if not measured or big.history_events is None else big.history_events < 5000,
        )
    )
    out.append(
        Target(
            "N = 200: no throttling failure",
            "build SUCCEEDED, no throttling error",
            f"{big.status}, {big.throttling_errors} throttling errors in the history,"
            f" {sum(big.throttled_calls.values())} calls refused by the ECS quotas and retried"
            if big and big.status != "not run"
            else "not measured",
            None
            if not big or big.status == "not run"
            else big.status == "SUCCEEDED" and not big.throttling_errors,
        )
    )
    small = by_n.get(20)
    if (
        big
        and small
        and big.status == "SUCCEEDED"
        and small.status == "SUCCEEDED"
        and big.wall_seconds
        and small.wall_seconds
    ):
        ratio = big.wall_seconds / small.wall_seconds
        out.append(
            Target(
                "local wall N = 200 / N = 20",
                "≤ 12",
                f"{ratio:.1f} ({big.wall_seconds:.1f} s / {small.wall_seconds:.1f} s)",
                ratio <= 12,
            )
        )
    else:
        out.append(Target("local wall N = 200 / N = 20", "≤ 12", "not measured", None))
    if imports is not None:
        name, worst = imports.worst
        ratio = worst / imports.boto3
        out.append(
            Target(
                "handler import / `import boto3`",
                "≤ 1.3",
                f"{ratio:.2f} (`{name}`); design floor {imports.floor / imports.boto3:.2f}",
                ratio <= 1.3,
            )
        )
    else:
        out.append(Target("handler import / `import boto3`", "≤ 1.3", "not measured", None))
    return out


def targets_table(items: list[Target]) -> str:
    rows = ["| target | required | measured | met? |", "|---|---|---|:---:|"]
    for t in items:
        met = "not measured" if t.met is None else ("yes" if t.met else "**no**")
        rows.append(f"| {t.name} | {t.target} | {t.measured} | {met} |")
    return "\n".join(rows)


def report(latencies: Any, results: list[Result], imports: Imports | None) -> str:
    return "\n\n".join(
        [
            machine(),
            results_table(results, imports),
            targets_table(targets(results, imports)),
            details(results, imports),
            latencies_table(latencies),
        ]
    )


def write_block(path: Path, block: str) -> None:
    """Replace the marked block of ``path`` (or append it), keeping the text around it."""
    text = path.read_text() if path.exists() else "# envbuild benchmark\n\n"
    new = f"{BEGIN}\n{block}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + new + tail
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="3,20,200", help="comma-separated N (3 = workshop)")
    parser.add_argument("--out", type=Path, help="markdown file whose bench block is replaced")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="wall-clock seconds allowed per build"
    )
    parser.add_argument("--import-repeats", type=int, default=11)
    parser.add_argument("--no-imports", action="store_true", help="skip the import timings")
    parser.add_argument("--namespace-operation-seconds", type=float)
    parser.add_argument("--task-start-seconds", type=float)
    parser.add_argument("--registration-seconds", type=float)
    args = parser.parse_args(argv)
    # powertools warns after every invocation that no metric was published (metrics are off).
    warnings.filterwarnings("ignore", message="No application metrics to publish")

    from envbuild_emulator.models.world import Latencies

    overrides = {
        name: getattr(args, name) for name in CRITICAL_PATH if getattr(args, name, None) is not None
    }
    latencies = Latencies(**overrides)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    results = []
    for n in sizes:
        print(f"bench: N = {n} ...", file=sys.stderr, flush=True)
        try:
            result = run_size(n, latencies, args.timeout)
        except Exception as error:  # report it in the table rather than hide it
            result = Result(n=n, label=str(n), status="ERROR", error=repr(error)[:300])
        print(
            f"bench: N = {n}: {result.status} in {_fmt(result.wall_seconds, '.1f')} s wall",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    imports = None
    if not args.no_imports:
        print("bench: import timings ...", file=sys.stderr, flush=True)
        imports = measure_imports(args.import_repeats)
    text = report(latencies, results, imports)
    print(text)
    if args.out:
        write_block(args.out, text)
        print(f"bench: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
