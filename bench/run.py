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
import compileall
import datetime as dt
import hashlib
import json
import os
import platform
import py_compile
import shutil
import statistics
import subprocess
import sys
import threading
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
#: The burst (bucket size) QUOTA_SOURCE gives for the ECS writes a build makes in bulk; the
#: sustained rates (1/s, 5/s) are the emulator's. The emulator keeps a bucket of one second of the
#: sustained rate (envbuild_emulator/throttling.py: the bucket is account-wide, so a burst other
#: callers may have spent is never relied on); the bench reports the limit under both.
DOCUMENTED_BURST = {"RegisterTaskDefinition": 20, "CreateService": 50, "UpdateService": 50}
#: On the critical path to DNS: namespace, then a task starts, then it is registered.
CRITICAL_PATH = ("namespace_operation_seconds", "task_start_seconds", "registration_seconds")
POLL_STATES = ("Check Namespace Operation", "Check Services")
BENCH_SERVICES = frozenset({"stepfunctions"})
#: Whether the emulator models each Lambda invocation's duration (envbuild_emulator.durations;
#: --no-lambda-durations turns it off to compare: the figures before issue 18's model).
LAMBDA_DURATIONS = [True]


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
    #: the quota-aware physical limit (bench/model.py) at the latencies of this run
    limit: float | None = None
    #: the same limit with the ECS bursts AWS documents (20 / 50), not the emulator's (1 / 5)
    limit_documented_burst: float | None = None
    #: billed seconds of each Lambda invocation: emulated time inside it (pacing) + local wall
    durations: list[float] = field(default_factory=list)
    cold_starts: int | None = None
    cost: Any = None
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
        """time-to-DNS over the quota-aware limit."""
        if self.time_to_dns is None or not self.limit:
            return None
        return self.time_to_dns / self.limit


def _handler_calls(
    before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]
) -> Counter[tuple[str, str]]:
    delta = after - before
    return Counter({key: n for key, n in delta.items() if key[0] not in BENCH_SERVICES})


#: Subnets sized for N = 500 (750 tasks): two /20s (4,091 addresses each) in the emulator's VPC,
#: beside its two /24s (251 each, too few for 750 tasks).
BIG_SUBNETS = (("10.0.32.0/20", "a"), ("10.0.48.0/20", "b"))


def big_subnets(emu: Any) -> dict[str, str]:
    """The emulator's prerequisites with PRIVATE_SUBNET_1/2 replaced by two /20 subnets."""
    ec2 = emu.client("ec2")
    prerequisites = dict(emu.prerequisites)
    for index, (cidr, zone) in enumerate(BIG_SUBNETS, start=1):
        subnet = ec2.create_subnet(
            VpcId=prerequisites["VPC_ID"], CidrBlock=cidr, AvailabilityZone=f"{emu.region}{zone}"
        )["Subnet"]["SubnetId"]
        prerequisites[f"PRIVATE_SUBNET_{index}"] = subnet
    return prerequisites


class InvocationTimer:
    """Wraps the emulator's Lambda dispatcher: each invocation's billed duration on AWS is taken as
    the emulated time that passed inside it (the handlers' pacing and, with the emulator's
    Lambda durations model, a modelled round trip per AWS call: envbuild_emulator.durations)
    plus the local wall time its code ran; the INIT of a cold start is billed apart (``inits``:
    the model's INIT of each cold start; without the model, the first invocation of each
    function is a cold start of the measured import)."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.durations: list[float] = []
        self.functions: set[str] = set()
        self.inits: list[float] = []
        self._lock = threading.Lock()
        self._original = emu.dispatcher.invoke
        emu.dispatcher.invoke = self.invoke

    def invoke(self, function_name: str, payload: Any) -> Any:
        clock = self.emu.clock
        emulated0, wall0 = clock.now(), time.perf_counter()
        try:
            return self._original(function_name, payload)
        finally:
            seconds = (clock.now() - emulated0) + (time.perf_counter() - wall0)
            model = getattr(self.emu, "durations", None)
            init = model.last_init_seconds() if model is not None else 0.0
            with self._lock:
                self.durations.append(seconds - init)
                self.functions.add(function_name)
                if init > 0:
                    self.inits.append(init)


def run_size(
    n: int, latencies: Any, timeout: float, *, rerun: bool = True, init_seconds: float = 0.0
) -> Result:
    from bench.model import build_cost, quota_limit
    from envbuild_emulator.aws_faults import is_mutating
    from envbuild_emulator.emulator import Emulator
    from envbuild_emulator.throttling import default_quotas

    result = Result(n=n, label="3 (workshop)" if n == 3 else str(n))
    result.critical_path = sum(getattr(latencies, name) for name in CRITICAL_PATH)
    result.limit = quota_limit(n, latencies, default_quotas())
    result.limit_documented_burst = quota_limit(n, latencies, documented_quotas())
    with Emulator(time_scale=0.0, latencies=latencies, lambda_durations=LAMBDA_DURATIONS[0]) as emu:
        spec = workshop_spec(emu.prerequisites) if n == 3 else generated_spec(n, big_subnets(emu))
        timer = InvocationTimer(emu)
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
        result.durations = list(timer.durations)
        result.cold_starts = len(timer.functions)
        if timer.inits:  # the emulator modelled INIT (envbuild_emulator.durations)
            result.cold_starts = len(timer.inits)
            init_seconds = sum(timer.inits) / len(timer.inits)
        memory = max((f.memory for f in emu.dispatcher.functions.values()), default=256)
        result.cost = build_cost(
            result.transitions, result.durations, memory, result.cold_starts, init_seconds
        )
        if result.status != "SUCCEEDED" or not rerun:
            return result
        # Re-run of the built environment: everything exists, every step should adopt it.
        calls0 = Counter(emu.aws_faults.calls)
        rerun_arn = emu.start_build(spec)
        try:
            result.rerun_status = emu.wait(rerun_arn, timeout=timeout)["status"]
        except TimeoutError:
            result.rerun_status = "TIMED OUT"
            return result
        calls = _handler_calls(calls0, Counter(emu.aws_faults.calls))
        mutating = Counter({f"{s}:{a}": n for (s, a), n in calls.items() if is_mutating(a)})
        result.rerun_mutating = sum(mutating.values())
        result.rerun_mutating_actions = mutating
    return result


def documented_quotas() -> dict[tuple[str, str], Any]:
    """The emulator's ECS buckets with the burst AWS documents (QUOTA_SOURCE): sustained rates
    are the same; RegisterTaskDefinition bursts to 20, CreateService/UpdateService to 50."""
    from envbuild_emulator.throttling import Quota, default_quotas

    quotas = default_quotas()
    for key, quota in list(quotas.items()):
        quotas[key] = Quota(quota.per_second, DOCUMENTED_BURST.get(key[1], quota.burst))
    return quotas


# ------------------------------------------------------------------------------------- sweep
#: Latencies of the sweep (namespace operation s, task start s): none lines up with the poll
#: schedule's first waits and 5 s steps (the defaults 60 / 30 do).
SWEEP_NAMESPACE = (61.0, 62.5, 64.0)
SWEEP_TASK_START = (31.0, 32.5, 34.0)


@dataclass
class Sweep:
    n: int
    #: (namespace s, task start s) -> (status, time-to-DNS, limit)
    points: dict[tuple[float, float], tuple[str, float | None, float]] = field(default_factory=dict)

    def ratios(self) -> list[float]:
        return [t / limit for status, t, limit in self.points.values() if t is not None and status == "SUCCEEDED"]  # fmt: skip

    @property
    def complete(self) -> bool:
        return bool(self.points) and len(self.ratios()) == len(self.points)

    @property
    def mean(self) -> float | None:
        ratios = self.ratios()
        return statistics.fmean(ratios) if ratios else None

    @property
    def worst(self) -> float | None:
        ratios = self.ratios()
        return max(ratios) if ratios else None


def run_sweep(n: int, base: Any, timeout: float) -> Sweep:
    import dataclasses

    sweep = Sweep(n)
    for namespace in SWEEP_NAMESPACE:
        for task_start in SWEEP_TASK_START:
            latencies = dataclasses.replace(
                base, namespace_operation_seconds=namespace, task_start_seconds=task_start
            )
            r = run_size(n, latencies, timeout, rerun=False)
            sweep.points[(namespace, task_start)] = (r.status, r.time_to_dns, r.limit or 0.0)
    return sweep


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


def _import_seconds(module: str, env: dict[str, str], cwd: Path = FUNCTIONS) -> float:
    # CPU time of the import (process_time): on a machine shared with other work, wall time also
    # counts the wait for a CPU, which is not the import's (a Lambda INIT has its vCPU).
    code = (
        f"import time\nt = time.process_time()\nimport {module}\nprint(time.process_time() - t)\n"
    )
    # -S: no site-packages (the venv's); only PYTHONPATH = the package and the function code.
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-S", "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


#: What every handler imports by design, none of envbuild's code: boto3, pydantic's BaseModel
#: (the input models) and Powertools' Logger and Metrics. Its ratio is the floor of the
#: cold-start proxy for this design: no handler can import faster.
DESIGN_FLOOR = "boto3, pydantic.main, aws_lambda_powertools.logging, aws_lambda_powertools.metrics"


# ------------------------------------------------------------------------------- built artifact
#: `make build`'s output: one directory per function, each the whole CodeUri + dependencies.
BUILD = REPO / ".aws-sam" / "build"
ARTIFACT_COPIES = REPO / ".bench" / "artifact"


def built_artifact() -> Path | None:
    """One function's built artifact (they are identical but for the handler), if built."""
    if not BUILD.is_dir():
        return None
    for candidate in sorted(BUILD.iterdir()):
        if (candidate / "envbuild_lambda" / "__init__.py").is_file():
            return candidate
    return None


def _native_overlay(artifact: Path, compiled: bool) -> Path | None:
    """The artifact's native extensions are built for arm64 (Lambda): on another machine this
    platform's build of the same pinned pydantic_core stands in for the artifact's, the only
    native module a handler imports (wrapt, for X-Ray, falls back to pure Python)."""
    native = list((artifact / "pydantic_core").glob("_pydantic_core*.so"))
    if native and platform.machine() in native[0].name:
        return None
    overlay = ARTIFACT_COPIES / ("overlay-compiled" if compiled else "overlay-source")
    if not (overlay / "pydantic_core").is_dir():
        shutil.copytree(
            lambda_package() / "pydantic_core",
            overlay / "pydantic_core",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        if compiled:
            compileall.compile_dir(
                overlay, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
            )
    return overlay


def _artifact_source_copy(artifact: Path) -> Path:
    """The artifact as `sam build` alone leaves it: every __pycache__ removed (a copy)."""
    stamp_value = str((artifact / "envbuild_lambda" / "__init__.py").stat().st_mtime_ns)
    copy = ARTIFACT_COPIES / "source-only"
    stamp = ARTIFACT_COPIES / "source-only.stamp"
    if not (stamp.is_file() and stamp.read_text() == stamp_value and copy.is_dir()):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(artifact, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        stamp.write_text(stamp_value)
    return copy


@dataclass
class ArtifactImports:
    artifact: str
    repeats: int
    overlay: bool  # this platform's pydantic_core stood in for the artifact's (arm64) one
    #: handler module -> median import seconds, with the shipped bytecode / from source only
    with_bytecode: dict[str, float]
    without_bytecode: dict[str, float]
    floor_with: float
    floor_without: float
    #: handler module -> median over the repeats of (handler / design floor), each ratio of one
    #: repeat's two imports from the shipped bytecode: drift on a loaded machine cancels out of
    #: it, unlike out of the ratio of the two medians (the target is checked on this)
    ratios_with: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def _worst(times: dict[str, float]) -> tuple[str, float]:
        name = max(times, key=lambda h: times[h])
        return name, times[name]

    @property
    def worst_with(self) -> tuple[str, float]:
        return self._worst(self.with_bytecode)

    @property
    def worst_without(self) -> tuple[str, float]:
        return self._worst(self.without_bytecode)

    @property
    def worst_ratio(self) -> tuple[str, float]:
        """The slowest handler relative to the design floor (paired ratios; medians' ratio when
        no pairs were kept)."""
        if self.ratios_with:
            return self._worst(self.ratios_with)
        name, seconds = self.worst_with
        return name, seconds / self.floor_with


def measure_artifact_imports(repeats: int) -> ArtifactImports | None:
    """Median over ``repeats`` fresh interpreters of each handler module's import from the built
    artifact, as Lambda imports it: ``python -S -B`` (no site-packages; bytecode read but never
    written: the file system is read-only), PYTHONPATH = the artifact (/var/task), cwd too (or the
    native overlay, when one stands in: ``-c`` puts cwd first on sys.path). With the bytecode
    `make build` ships, and from a copy without any."""
    artifact = built_artifact()
    if artifact is None:
        return None
    source_copy = _artifact_source_copy(artifact)
    trees = {
        True: (artifact, _native_overlay(artifact, compiled=True)),
        False: (source_copy, _native_overlay(artifact, compiled=False)),
    }
    modules = sorted(p.stem for p in HANDLERS.glob("*.py") if p.stem not in {"__init__", "inputs"})
    times: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
    pairs: dict[str, list[float]] = {}
    for _ in range(repeats):  # interleaved, so drift on a busy machine hits both alike
        for compiled, (root, overlay) in trees.items():
            env = {
                "PATH": os.environ.get("PATH", ""),
                "PYTHONPATH": os.pathsep.join([str(p) for p in (overlay, root) if p is not None]),
                "PYTHONDONTWRITEBYTECODE": "1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
            for module in [DESIGN_FLOOR, *(f"envbuild_lambda.handlers.{m}" for m in modules)]:
                if compiled and module != DESIGN_FLOOR:
                    # the floor again right before each handler: the pair's ratio
                    floor = _import_seconds(DESIGN_FLOOR, env, cwd=overlay or root)
                    seconds = _import_seconds(module, env, cwd=overlay or root)
                    pairs.setdefault(module.rsplit(".", 1)[-1], []).append(seconds / floor)
                    times[compiled].setdefault(DESIGN_FLOOR, []).append(floor)
                    times[compiled].setdefault(module, []).append(seconds)
                    continue
                times[compiled].setdefault(module, []).append(
                    _import_seconds(module, env, cwd=overlay or root)
                )
    medians = {
        compiled: {m: statistics.median(t) for m, t in by_module.items()}
        for compiled, by_module in times.items()
    }
    ratios = {name: statistics.median(r) for name, r in pairs.items()}
    handlers = {c: {m.rsplit(".", 1)[-1]: v for m, v in medians[c].items() if m != DESIGN_FLOOR} for c in medians}  # fmt: skip
    return ArtifactImports(
        artifact=artifact.name,
        repeats=repeats,
        overlay=trees[True][1] is not None,
        with_bytecode=handlers[True],
        without_bytecode=handlers[False],
        floor_with=medians[True][DESIGN_FLOOR],
        floor_without=medians[False][DESIGN_FLOOR],
        ratios_with=ratios,
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
        "| modelled quota (token bucket) | per second | burst (emulator) | burst (AWS docs) | source |",
        "|---|---:|---:|---:|---|",
    ]
    for (service, action), quota in default_quotas().items():
        documented = DOCUMENTED_BURST.get(action, quota.burst)
        rows.append(
            f"| {service}:{action} | {quota.per_second:g} | {quota.burst} | {documented} |"
            f" {QUOTA_SOURCE} |"
        )
    return "\n".join(rows)


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.6f}"


def results_table(results: list[Result], sweeps: dict[int, Sweep]) -> str:
    head = "| N services | " + " | ".join(r.label for r in results) + " |"
    rule = "|---|" + "---:|" * len(results)

    def row(name: str, cells: list[str]) -> str:
        return f"| {name} | " + " | ".join(cells) + " |"

    rows = [head, rule]
    rows.append(row("build status", [r.status for r in results]))
    rows.append(
        row(
            "time-to-DNS (emulated s) / quota-aware limit (s) = ratio",
            [
                f"{_fmt(r.time_to_dns, '.0f')} / {_fmt(r.limit, '.0f')} = {_fmt(r.ratio, '.2f')}"
                for r in results
            ],
        )
    )
    rows.append(
        row(
            "limit with the documented ECS bursts (20 / 50) = ratio",
            [
                f"{_fmt(r.limit_documented_burst, '.0f')} = "
                + _fmt(
                    r.time_to_dns / r.limit_documented_burst
                    if r.time_to_dns and r.limit_documented_burst
                    else None,
                    ".2f",
                )
                for r in results
            ],
        )
    )
    rows.append(
        row(
            "sweep of latencies off the poll schedule: mean / worst ratio",
            [
                f"{_fmt(sweeps[r.n].mean, '.3f')} / {_fmt(sweeps[r.n].worst, '.3f')}"
                f" ({len(sweeps[r.n].points)} points)"
                if r.n in sweeps
                else "—"
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
        row(
            "cost per build: total (Step Functions transitions + Lambda requests + GB-s incl. INIT)",
            [
                f"{_usd(r.cost.total_usd)} ({_usd(r.cost.transitions_usd)} + "
                f"{_usd(r.cost.requests_usd)} + {_usd(r.cost.duration_usd)};"
                f" {r.cost.billed_gb_seconds:.1f} GB-s)"
                if r.cost is not None
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
            "calls refused by the emulated ECS and Cloud Map quotas (then retried)",
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
    return "\n".join(rows)


def imports_table(imports: ArtifactImports | None) -> str:
    if imports is None:
        return "Cold import of the built artifact: not measured (no `.aws-sam/build`: run `make build`)."
    name_w, worst_w = imports.worst_with
    name_s, worst_s = imports.worst_without
    overlay = (
        " This machine is not arm64: its own build of the pinned pydantic_core stood in for the"
        " artifact's arm64 extension (the only native module a handler imports)."
        if imports.overlay
        else ""
    )
    rows = [
        f"Cold import of the built artifact `.aws-sam/build/{imports.artifact}` (median of"
        f" {imports.repeats} fresh `python -S -B` interpreters each, PYTHONPATH and cwd = the"
        f" artifact, nothing written).{overlay}",
        "",
        "| import | with the shipped bytecode (ms) | source only (ms) | source / bytecode |",
        "|---|---:|---:|---:|",
        f"| design floor ({DESIGN_FLOOR}) | {imports.floor_with * 1000:.0f} |"
        f" {imports.floor_without * 1000:.0f} | {imports.floor_without / imports.floor_with:.1f}x |",
        f"| slowest handler (`{name_w}` / `{name_s}`) | {worst_w * 1000:.0f} |"
        f" {worst_s * 1000:.0f} | {worst_s / worst_w:.1f}x |",
        f"| slowest handler / design floor | {worst_w / imports.floor_with:.2f} |"
        f" {worst_s / imports.floor_without:.2f} | |",
    ]
    if imports.ratios_with:
        name_r, ratio_r = imports.worst_ratio
        rows += [
            "",
            "Each repeat imports the design floor right before each handler, in fresh"
            " interpreters (CPU time of the import): the target is checked on the median over"
            " the repeats of each handler's import over the floor's just before it (drift on a"
            f" loaded machine cancels out of a pair). Slowest: `{name_r}` {ratio_r:.2f}; all: "
            + ", ".join(
                f"{n} {r:.2f}"
                for n, r in sorted(imports.ratios_with.items(), key=lambda kv: -kv[1])
            )
            + ".",
        ]
    by = ", ".join(
        f"{name} {seconds * 1000:.0f}"
        for name, seconds in sorted(imports.with_bytecode.items(), key=lambda kv: -kv[1])
    )
    rows += ["", f"Handler import medians with bytecode (ms): {by}."]
    return "\n".join(rows)


def details(results: list[Result], sweeps: dict[int, Sweep]) -> str:
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
        if r.durations:
            lines.append(
                f"  - Lambda billed duration: {sum(r.durations):.1f} s over {len(r.durations)}"
                f" invocations (longest {max(r.durations):.1f} s), {r.cold_starts} cold starts"
            )
        if r.rerun_mutating_actions:
            by = ", ".join(f"{k} {v}" for k, v in sorted(r.rerun_mutating_actions.items()))
            lines.append(f"  - re-run mutating calls: {by}")
        sweep = sweeps.get(r.n)
        if sweep is not None:
            by = ", ".join(
                f"{ns:g}/{task:g} s: {_fmt(t, '.0f')}/{limit:.0f}"
                + ("" if status == "SUCCEEDED" else f" {status}")
                for (ns, task), (status, t, limit) in sorted(sweep.points.items())
            )
            lines.append(f"  - sweep (namespace/task start: time-to-DNS/limit): {by}")
    return "\n".join(lines)


@dataclass
class Target:
    name: str
    target: str
    measured: str
    met: bool | None  # None: not measured

    @property
    def cell(self) -> str:
        return "not measured" if self.met is None else ("yes" if self.met else "**no**")


def _by(value: float | None, limit: float) -> str:
    """How far a figure is from its target: "" when met, else "(missed by +x.x%)"."""
    if value is None or value <= limit:
        return ""
    return f" (missed by {100 * (value / limit - 1):.1f}%)"


def targets(
    results: list[Result], sweeps: dict[int, Sweep], imports: ArtifactImports | None
) -> list[Target]:
    by_n = {r.n: r for r in results}
    out: list[Target] = []
    for n in (3, 20):
        sweep = sweeps.get(n)
        if sweep is None or not sweep.points:
            out.append(Target(f"N = {n}: sweep mean / worst", "≤ 1.05 / ≤ 1.10 x limit", "not measured", None))  # fmt: skip
            continue
        mean, worst = sweep.mean, sweep.worst
        met = sweep.complete and mean is not None and worst is not None and mean <= 1.05 and worst <= 1.10  # fmt: skip
        out.append(
            Target(
                f"N = {n}: sweep mean / worst",
                "≤ 1.05 / ≤ 1.10 x limit",
                f"{_fmt(mean, '.3f')}{_by(mean, 1.05)} / {_fmt(worst, '.3f')}{_by(worst, 1.10)}"
                + ("" if sweep.complete else " (some builds failed)"),
                met,
            )
        )
    for n in (200, 500):
        r = by_n.get(n)
        ratio = r.ratio if r and r.status == "SUCCEEDED" else None
        out.append(
            Target(
                f"N = {n}: time-to-DNS",
                "≤ 1.05 x limit",
                f"{ratio:.3f} x ({r.time_to_dns:.0f} s / {r.limit:.0f} s){_by(ratio, 1.05)}"
                if r and ratio is not None and r.time_to_dns is not None and r.limit
                else ("not measured" if r is None else r.status),
                None if r is None else (ratio is not None and ratio <= 1.05),
            )
        )
    big = by_n.get(500)
    out.append(
        Target(
            "N = 500 builds",
            "SUCCEEDED",
            "not measured" if big is None else big.status,
            None if big is None else big.status == "SUCCEEDED",
        )
    )
    w = by_n.get(3)
    if w and w.transitions is not None and w.polls is not None:
        limit = 25 + 3 * w.polls
        out.append(Target("workshop: state transitions", f"≤ 25 + 3 x polls = {limit} ({w.polls} polls)", str(w.transitions), w.transitions <= limit))  # fmt: skip
    if w and w.invocations is not None:
        out.append(Target("workshop: Lambda invocations", f"≤ 2N + 8 = {2 * w.n + 8}", str(w.invocations), w.invocations <= 2 * w.n + 8))  # fmt: skip
    mid = by_n.get(200)
    if mid is not None and mid.largest_payload is not None and mid.history_events is not None:
        out.append(Target("N = 200: largest state payload", "< 64 KiB (65,536 bytes)", f"{mid.largest_payload:,} bytes", mid.largest_payload < 64 * KIB))  # fmt: skip
        out.append(Target("N = 200: history events", "< 5,000", f"{mid.history_events:,}", mid.history_events < 5000))  # fmt: skip
    if imports is not None:
        name, ratio = imports.worst_ratio
        worst = imports.with_bytecode[name]
        out.append(
            Target(
                "cold import, built artifact: slowest handler / design floor (median of paired ratios)",
                "≤ 1.10 (envbuild's own modules add ≤ 10%)",
                f"{ratio:.2f} (`{name}` {worst * 1000:.0f} ms / {imports.floor_with * 1000:.0f} ms){_by(ratio, 1.10)}",
                ratio <= 1.10,
            )
        )
    else:
        out.append(Target("cold import, built artifact", "≤ 1.10 x design floor", "not measured", None))  # fmt: skip
    return out


def targets_table(items: list[Target]) -> str:
    rows = ["| target | required | measured | met? |", "|---|---|---|:---:|"]
    for t in items:
        rows.append(f"| {t.name} | {t.target} | {t.measured} | {t.cell} |")
    return "\n".join(rows)


def prices_table() -> str:
    from bench.model import PRICE_SOURCES, PRICES

    return "\n".join(
        [
            "| price (us-east-1, list) | USD | source |",
            "|---|---:|---|",
            f"| Step Functions Standard, per state transition | {PRICES.per_transition:.9f} | {PRICE_SOURCES[0]} |",
            f"| Lambda Arm, per GB-second (INIT billed too) | {PRICES.per_gb_second_arm:.10f} | {PRICE_SOURCES[1]}; {PRICE_SOURCES[2]} |",
            f"| Lambda, per request | {PRICES.per_request:.7f} | {PRICE_SOURCES[1]} |",
        ]
    )


def report(
    latencies: Any,
    results: list[Result],
    sweeps: dict[int, Sweep],
    imports: ArtifactImports | None,
) -> str:
    return "\n\n".join(
        [
            machine(),
            results_table(results, sweeps),
            targets_table(targets(results, sweeps, imports)),
            imports_table(imports),
            details(results, sweeps),
            latencies_table(latencies),
            prices_table(),
        ]
    )


def as_json(
    latencies: Any,
    results: list[Result],
    sweeps: dict[int, Sweep],
    imports: ArtifactImports | None,
) -> dict[str, Any]:
    from envbuild_emulator.throttling import default_quotas

    return {
        "sizes": [
            {
                "n": r.n,
                "status": r.status,
                "time_to_dns_s": r.time_to_dns,
                "limit_s": r.limit,
                "ratio": r.ratio,
                "limit_documented_burst_s": r.limit_documented_burst,
                "transitions": r.transitions,
                "lambda_invocations": r.invocations,
                "history_events": r.history_events,
                "largest_state_bytes": r.largest_payload,
                "cost_usd": None if r.cost is None else r.cost.total_usd,
                "billed_gb_seconds": None if r.cost is None else r.cost.billed_gb_seconds,
                "wall_seconds": r.wall_seconds,
                "sweep": None
                if r.n not in sweeps
                else {
                    "mean_ratio": sweeps[r.n].mean,
                    "worst_ratio": sweeps[r.n].worst,
                    "points": [
                        {
                            "namespace_operation_s": ns,
                            "task_start_s": task,
                            "status": status,
                            "time_to_dns_s": t,
                            "limit_s": limit,
                        }
                        for (ns, task), (status, t, limit) in sorted(sweeps[r.n].points.items())
                    ],
                },
            }
            for r in results
        ],
        "targets": [
            {"name": t.name, "required": t.target, "measured": t.measured, "met": t.met}
            for t in targets(results, sweeps, imports)
        ],
        "latencies_s": {item.name: getattr(latencies, item.name) for item in fields(latencies)},
        "quotas": {
            f"{service}:{action}": {
                "per_second": quota.per_second,
                "burst": quota.burst,
                "documented_burst": DOCUMENTED_BURST.get(action, quota.burst),
            }
            for (service, action), quota in default_quotas().items()
        },
        "cold_import": None
        if imports is None
        else {
            "artifact": imports.artifact,
            "repeats": imports.repeats,
            "floor_with_bytecode_s": imports.floor_with,
            "floor_source_only_s": imports.floor_without,
            "handlers_with_bytecode_s": imports.with_bytecode,
            "handlers_source_only_s": imports.without_bytecode,
            "handler_over_floor_paired_median": imports.ratios_with,
        },
    }


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
    parser.add_argument("--sizes", default="3,20,200,500", help="comma-separated N (3 = workshop)")
    parser.add_argument(
        "--sweep-sizes", default="3,20", help="sizes also run over the latency sweep ('' = none)"
    )
    parser.add_argument("--out", type=Path, help="markdown file whose bench block is replaced")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="wall-clock seconds allowed per build"
    )
    parser.add_argument("--import-repeats", type=int, default=7)
    parser.add_argument("--no-imports", action="store_true", help="skip the import timings")
    parser.add_argument(
        "--no-lambda-durations",
        action="store_true",
        help="Lambda invocations take 0 emulated seconds (no INIT, no API round trips)",
    )
    parser.add_argument("--namespace-operation-seconds", type=float)
    parser.add_argument("--task-start-seconds", type=float)
    parser.add_argument("--registration-seconds", type=float)
    args = parser.parse_args(argv)
    LAMBDA_DURATIONS[0] = not args.no_lambda_durations
    # powertools warns after every invocation that no metric was published (metrics are off).
    warnings.filterwarnings("ignore", message="No application metrics to publish")

    from envbuild_emulator.models.world import Latencies

    overrides = {
        name: getattr(args, name) for name in CRITICAL_PATH if getattr(args, name, None) is not None
    }
    latencies = Latencies(**overrides)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    sweep_sizes = [int(s) for s in args.sweep_sizes.split(",") if s.strip()]

    imports = None
    if not args.no_imports:
        print("bench: cold import of the built artifact ...", file=sys.stderr, flush=True)
        imports = measure_artifact_imports(args.import_repeats)
    # INIT billed per cold start: the slowest handler's import with the shipped bytecode (the
    # source tree's when nothing is built).
    init_seconds = imports.worst_with[1] if imports is not None else 0.0

    results = []
    for n in sizes:
        print(f"bench: N = {n} ...", file=sys.stderr, flush=True)
        try:
            result = run_size(n, latencies, args.timeout, init_seconds=init_seconds)
        except Exception as error:  # report it in the table rather than hide it
            result = Result(n=n, label=str(n), status="ERROR", error=repr(error)[:300])
        print(
            f"bench: N = {n}: {result.status} in {_fmt(result.wall_seconds, '.1f')} s wall",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    sweeps: dict[int, Sweep] = {}
    for n in sweep_sizes:
        print(f"bench: sweep N = {n} ...", file=sys.stderr, flush=True)
        sweeps[n] = run_sweep(n, latencies, args.timeout)
    text = report(latencies, results, sweeps, imports)
    print(text)
    if args.out:
        write_block(args.out, text)
        print(f"bench: wrote {args.out}", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps(as_json(latencies, results, sweeps, imports), indent=2) + "\n"
        )
        print(f"bench: wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
