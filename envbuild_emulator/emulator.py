"""The emulated AWS account with envbuild deployed in it, in-process or served on 127.0.0.1.

with Emulator() as emu:                     # in-process (tests, `envbuild run`)
    arn = emu.start_build(spec)
    emu.wait(arn)

Emulator(port=5000).start()                 # server mode (`envbuild emulator`): the AWS CLI works
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.session

from envbuild_emulator.aws_faults import AwsFaults
from envbuild_emulator.clock import Clock
from envbuild_emulator.deploy import Deployment, deploy
from envbuild_emulator.durations import LambdaDurations
from envbuild_emulator.dynamodb import AtomicConditionalWrites
from envbuild_emulator.events import EventBridgeToStepFunctions
from envbuild_emulator.interpreter import InterpreterPatches, LambdaDispatcher
from envbuild_emulator.models.ecs_idempotency import EcsCreateServiceIdempotency
from envbuild_emulator.seed import seed
from envbuild_emulator.sfn_limits import StepFunctionsLimits
from envbuild_emulator.stack import create_stack
from envbuild_emulator.template import Template, load_yaml
from envbuild_emulator.throttling import ApiThrottling

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ACCOUNT = "123456789012"  # moto's default account: any access key maps to it
SFN_CONFIG = {"stepfunctions": {"execute_state_machine": True}}

#: Environment of the emulator process: fake credentials (never real ones), quiet powertools.
PROCESS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    # DiscoverInstances would otherwise call data-<endpoint host> (see shared notes).
    "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
    # moto's EC2 backend would load ~2,600 public AMIs into each new account (~0.2 s); envbuild
    # runs on Fargate and never reads an image.
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


#: One botocore session for every emulator of the process: its loader caches the service models,
#: so an emulator's clients are made in milliseconds instead of ~50 ms each (tests start one per
#: test). Credentials and region come from the emulator (PROCESS_ENVIRONMENT, ``client``).
_BOTOCORE_SESSION = botocore.session.Session()


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


class Emulator:
    def __init__(
        self,
        *,
        time_scale: float = 0.0,
        region: str = "us-east-1",
        port: int | None = None,
        template: Path | None = None,
        latencies: Any = None,
        log_level: str = "ERROR",
        seed_prerequisites: bool = True,
        lambda_durations: bool = True,
    ) -> None:
        self.clock = Clock(time_scale)
        self.region = region
        self.port = port
        self.template_path = template or REPO_ROOT / "template.yaml"
        self.latencies = latencies
        self.log_level = log_level
        self.seed_prerequisites = seed_prerequisites
        #: model each Lambda invocation's duration (envbuild_emulator.durations)
        self.lambda_durations = lambda_durations
        self.dispatcher = LambdaDispatcher()
        self.endpoint_url: str | None = None
        self.prerequisites: dict[str, str] = {}
        self.deployment = Deployment()
        self.stack_name = ""
        self._stack: list[Any] = []
        self._saved_env: dict[str, str | None] = {}
        self._server: Any = None
        self._session = boto3.session.Session(botocore_session=_BOTOCORE_SESSION)
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------
    def _setenv(self, key: str, value: str) -> None:
        self._saved_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value

    def start(self) -> Emulator:
        try:
            return self._install()
        except BaseException:
            self.stop()  # undo what was installed (moto's mock, the World, the patches, env)
            raise

    def _install(self) -> Emulator:
        # moto's interpreter logs every failed execution with a long internal repr; the execution's
        # Error and Cause (DescribeExecution, history) are what users read.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per HTTP request
        for key, value in PROCESS_ENVIRONMENT.items():
            self._setenv(key, value)
        self._setenv("AWS_DEFAULT_REGION", self.region)
        self._setenv("POWERTOOLS_LOG_LEVEL", self.log_level)
        self._setenv("LOG_LEVEL", self.log_level)
        if self.port is None:
            from moto import mock_aws

            mock = mock_aws(config=SFN_CONFIG)  # type: ignore[arg-type]
            mock.start()
            self._stack.append(mock.stop)
        else:
            self._start_server(self.port)
        from envbuild_emulator.models import World

        world = World(self.clock, self.latencies) if self.latencies else World(self.clock)
        world.install()
        self.world = world
        self._stack.append(world.uninstall)
        patches = InterpreterPatches(self.dispatcher, self.clock).install()
        self._stack.append(patches.uninstall)
        events = EventBridgeToStepFunctions().install()
        self._stack.append(events.uninstall)
        limits = StepFunctionsLimits().install()
        self._stack.append(limits.uninstall)
        writes = AtomicConditionalWrites().install()
        self._stack.append(writes.uninstall)
        idempotency = EcsCreateServiceIdempotency().install()
        self._stack.append(idempotency.uninstall)
        # ECS rate quotas on the emulated clock. A server at time scale 0 is left unthrottled:
        # its requests arrive on the server's threads, outside the invocations' own timelines
        # that the handlers' pacing advances (envbuild_emulator.clock).
        self.throttling = ApiThrottling(self.clock)
        if self.port is None or self.clock.scale > 0:
            self.throttling.install()
            self._stack.append(self.throttling.uninstall)
        self.aws_faults = AwsFaults().install()
        self._stack.append(self.aws_faults.uninstall)
        # Lambda durations on the emulated clock (INIT of cold starts, a round trip per AWS call):
        # like the quotas, only where the invocations' timelines are (not a server at scale 0).
        self.durations = LambdaDurations(self.clock) if self.lambda_durations else None
        if self.durations is not None and (self.port is None or self.clock.scale > 0):
            self.durations.install()
            self._stack.append(self.durations.uninstall)
            self.dispatcher.durations = self.durations
        account = self.client("sts").get_caller_identity()["Account"]
        template = Template(self.template_path, load_yaml(self.template_path), account, self.region)
        self.deployment = deploy(template, self.client, self.dispatcher)
        self.stack_name = template.stack_name
        create_stack(self.client, template, self.deployment)  # as `sam deploy` leaves it
        # The handlers' settings were just set from the template's environment: keep the log level.
        self._setenv("POWERTOOLS_LOG_LEVEL", self.log_level)
        self._setenv("LOG_LEVEL", self.log_level)
        if self.seed_prerequisites:
            self.prerequisites = seed(self.client, self.region)
        return self

    def _start_server(self, port: int) -> None:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        if port and not port_is_free(port):
            raise OSError(f"port {port} on 127.0.0.1 is already in use; choose another with --port")
        default_user_config["stepfunctions"] = dict(SFN_CONFIG["stepfunctions"])
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        host, bound = server.get_host_and_port()
        self.port = bound
        self.endpoint_url = f"http://{host}:{bound}"
        self._server = server
        self._stack.append(server.stop)
        # moto's backends are process-wide: a served account's state outlives its server unless
        # reset (the next served emulator in this process would find this one's resources).
        self._stack.append(self._reset_served_account)
        # The handlers (in this process) reach the served account over HTTP, as the AWS CLI does.
        self._setenv("AWS_ENDPOINT_URL", self.endpoint_url)
        self._setenv("MOTO_PORT", str(bound))

    def _reset_served_account(self) -> None:
        import requests

        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=30)

    def stop(self) -> None:
        self._clients.clear()
        while self._stack:
            self._stack.pop()()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- use ----------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A client of the emulated account (one per service, made once: clients are thread-safe)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, region_name=self.region, endpoint_url=self.endpoint_url
                )
            return self._clients[service]

    @property
    def state_machine_arn(self) -> str:
        return self.deployment.build_state_machine_arn

    @property
    def teardown_state_machine_arn(self) -> str:
        return self.deployment.teardown_state_machine_arn

    def start_build(self, spec: dict[str, Any], name: str | None = None) -> str:
        return self._start(self.state_machine_arn, spec, name)

    def start_teardown(self, spec_or_plan: dict[str, Any], name: str | None = None) -> str:
        """Start the teardown workflow with a spec (+ options) or ``{"plan": RemovalPlan}``."""
        return self._start(self.teardown_state_machine_arn, spec_or_plan, name)

    def _start(self, state_machine_arn: str, document: dict[str, Any], name: str | None) -> str:
        plan = document.get("plan")
        label = plan.get("environment") if isinstance(plan, dict) else document.get("environment")
        name = name or f"{str(label or 'envbuild')[:40]}-{uuid.uuid4().hex[:12]}"
        return str(
            self.client("stepfunctions").start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps(document)
            )["executionArn"]
        )

    def advance(self, seconds: float) -> float:
        """Emulated time goes on after an execution ended, as AWS's does: move it ``seconds``
        ahead and apply everything that became due meanwhile (a Cloud Map operation a failed
        build submitted completes 60 s after its request, the build or not). Returns the new
        time. Use it once the executions have ended: a running one keeps its own time at scale 0
        (envbuild_emulator.clock); docs/aws-fidelity.md, "Time"."""
        now = self.clock.advance(seconds)
        self.world.tick()
        return now

    def wait(self, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"execution {execution_arn} still RUNNING after {timeout} s (wall clock)"
                )
            time.sleep(0.02)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return execution_history(self.client("stepfunctions"), execution_arn)


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution's history, all pages."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]
