"""The CLI on a deployed stack, through the same code path as AWS: the emulator serves the account
(HTTP, as AWS does), its CloudFormation stack "envbuild" carries the template's outputs, and the CLI
finds the state machines from them (`--stack-name`, `watch`, `history`), with each AWS error a
user can meet reported in one line."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envbuild.cli import execution_name, main
from envbuild.stack import OUTPUTS
from envbuild_emulator.template import load_yaml

# Served emulators share moto's process-wide backends: under xdist these tests stay in one
# worker, in file order (as in a serial run), with tests/test_cli.py and tests/test_cli_stack.py.
pytestmark = pytest.mark.xdist_group("served_emulator")


REPO = Path(__file__).resolve().parent.parent
WORKSHOP = str(REPO / "events" / "workshop.json")
#: Step Functions execution names: 1-80 characters, none of these (StartExecution API reference).
INVALID_NAME_CHARACTERS = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def served() -> Iterator[Any]:
    from envbuild_emulator.emulator import Emulator

    with Emulator(port=0, time_scale=0.0) as emulator:
        yield emulator


@pytest.fixture
def aws(served: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The emulated account as a user's shell sees it: its variables exported, in tmp_path."""
    monkeypatch.chdir(tmp_path)
    for key, value in served.prerequisites.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # the throttling test's retries stay short
    yield ["--endpoint", served.endpoint_url, "--region", served.region]
    served.aws_faults.clear()


def one_error_line(capsys: Any) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_the_emulator_stack_carries_the_template_outputs_the_cli_reads(served: Any) -> None:
    template = load_yaml(REPO / "template.yaml")
    stack = served.client("cloudformation").describe_stacks(StackName="envbuild")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert set(OUTPUTS.values()) <= set(template["Outputs"])
    assert outputs[OUTPUTS["envbuild-BuildEnvironmentStateMachine"]] == served.state_machine_arn
    assert (
        outputs[OUTPUTS["envbuild-TeardownEnvironmentStateMachine"]]
        == served.teardown_state_machine_arn
    )
    assert set(outputs) <= set(template["Outputs"])


def test_execution_names_are_valid_step_functions_names() -> None:
    for environment in ("workshop", "x" * 40, "Bad Name: /#1", "", None):
        name = execution_name({"environment": environment})
        assert 1 <= len(name) <= 80
        assert not INVALID_NAME_CHARACTERS.search(name), name
        assert re.search(r"-\d{8}T\d{6}-[0-9a-f]{6}$", name)  # UTC time, then a random suffix


def test_run_on_the_stack_shows_progress_and_the_summary_and_builds_the_account(
    served: Any, aws: list[str], tmp_path: Path
) -> None:
    out = io.StringIO()

    code = main(["run", WORKSHOP, "--stack-name", "envbuild", *aws], out=out)

    text = out.getvalue()
    assert code == 0, text
    assert re.search(r"^Building environment workshop \(execution workshop-\d{8}T", text, re.M)
    # progress: one line per state as it ends, timed from the execution's start
    for state in ("Validate Spec", "Acquire Lock", "Preflight", "Create Namespace", "Verify DNS"):
        assert re.search(rf"^ +\d+\.\ds  ✓ {state}$", text, re.M), state
    assert re.search(
        r"✓ Register Task Definitions? \(3 services\)|✓ Register Task Definitions", text
    )
    # the poll loop: one line of per-service counts, no "Wait For" lines
    assert re.search(r"^ +\d+\.\ds  ✓ Check Services \(\d+ checks?\)", text, re.M)
    assert "Wait For" not in text
    # the summary, as the local run prints it
    assert "Environment workshop is ready." in text
    for name, count in (("web", 2), ("api", 2), ("db", 1)):
        line = next(row for row in text.splitlines() if f"{name}.workshop.local  " in row)
        assert len(line.split("->")[1].split(",")) == count
    env = (tmp_path / "workshop-resources.env").read_text()
    # the account: what the summary and env file say exists, exists
    sd = served.client("servicediscovery")
    namespace_id = re.search(r"export NAMESPACE_ID=(\S+)", env)
    assert namespace_id
    assert sd.get_namespace(Id=namespace_id.group(1))["Namespace"]["Name"] == "workshop.local"
    web = re.search(r"export WEB_SERVICE_ID=(\S+)", env)
    assert web
    assert len(sd.list_instances(ServiceId=web.group(1))["Instances"]) == 2
    executions = served.client("stepfunctions").list_executions(
        stateMachineArn=served.state_machine_arn
    )["executions"]
    assert any(e["status"] == "SUCCEEDED" and e["name"] in text for e in executions)


def test_a_failed_build_on_the_stack_reports_error_and_cause(
    aws: list[str], tmp_path: Path
) -> None:
    spec = json.loads(Path(WORKSHOP).read_text())
    spec["services"][0]["prot"] = 80
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    out = io.StringIO()

    code = main(["run", "bad.json", "--stack-name", "envbuild", *aws], out=out)

    assert code == 1
    assert "✗ Build Failed" in out.getvalue()
    assert "Build FAILED: InvalidSpec: " in out.getvalue()
    assert "services[0].prot" in out.getvalue()


def test_watch_attaches_to_an_execution_started_elsewhere(served: Any, aws: list[str]) -> None:
    text = Path(WORKSHOP).read_text()
    for key, value in served.prerequisites.items():
        text = text.replace("${" + key + "}", value)
    spec = {**json.loads(text), "environment": "console"}
    spec["namespace"]["name"] = "console.local"
    spec["services"] = [{"name": "frontend", "image": "nginx:1.27", "port": 80, "desiredCount": 2}]
    # as the console does: any name, no CLI involved
    arn = served.client("stepfunctions").start_execution(
        stateMachineArn=served.state_machine_arn, name="a1b2c3d4-console", input=json.dumps(spec)
    )["executionArn"]
    out = io.StringIO()

    code = main(["watch", arn, "--endpoint", served.endpoint_url], out=out)  # region from the ARN

    text = out.getvalue()
    assert code == 0, text
    assert text.startswith("Execution a1b2c3d4-console of envbuild-BuildEnvironmentStateMachine (")
    assert re.search(r"^ +\d+\.\ds  ✓ Validate Spec$", text, re.M)
    assert re.search(r"^ +\d+\.\ds  ✓ Release Lock$", text, re.M)
    assert "Environment console is ready." in text
    assert "frontend.console.local  ->  10." in text
    assert Path("console-resources.env").exists()


def test_history_lists_builds_and_teardowns_of_one_environment(served: Any, aws: list[str]) -> None:
    spec = json.loads(Path(WORKSHOP).read_text())
    spec["services"][0]["prot"] = 80
    Path("bad.json").write_text(json.dumps(spec))
    out = io.StringIO()
    assert main(["run", "bad.json", "--stack-name", "envbuild", *aws], out=out) == 1
    assert main(["run", WORKSHOP, "--stack-name", "envbuild", *aws], out=out) == 0, out.getvalue()
    teardown = [
        "teardown",
        WORKSHOP,
        "--yes",
        "--stack-name",
        "envbuild",
        "--delete-log-groups",
        *aws,
    ]
    assert main(teardown, out=out) == 0, out.getvalue()
    assert "removed namespace: workshop.local" in out.getvalue()
    out = io.StringIO()

    code = main(["history", "workshop", *aws], out=out)

    text = out.getvalue()
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0] == "Recent builds and teardowns of environment workshop:"
    assert lines[1].split() == ["STARTED", "(UTC)", "KIND", "STATUS", "DURATION", "EXECUTION"]
    rows = [line.split() for line in lines[2:]]
    assert rows[0][2:4] == ["teardown", "SUCCEEDED"]  # newest first
    assert ["build", "SUCCEEDED"] in [row[2:4] for row in rows]
    failed = next(line for line in lines if " FAILED " in line)  # the invalid spec
    assert re.search(
        r" build +FAILED +\d+s +workshop-\d{8}T\d{6}-[0-9a-f]{6}  InvalidSpec: ", failed
    )
    for line in lines[2:]:
        assert re.search(r" (SUCCEEDED|FAILED) +(\d+s|\d+m \d\ds) +workshop-", line), line
    assert "console" not in text  # another environment's executions are not listed


def test_history_of_an_unknown_environment_says_so(aws: list[str]) -> None:
    out = io.StringIO()
    assert main(["history", "never-built", *aws], out=out) == 0
    assert out.getvalue().startswith("No builds or teardowns of environment never-built")


# -- each error in one line, exit code 2, nothing started -----------------------------------------
def test_no_stack(served: Any, aws: list[str], capsys: Any) -> None:
    code = main(["run", WORKSHOP, "--stack-name", "envbuild-prod", *aws])
    assert code == 2
    assert one_error_line(capsys) == (
        f"envbuild: no stack envbuild-prod in {served.region}: deploy it with `sam deploy "
        "--guided`, or pass the right --stack-name / --region / --profile"
    )


def test_a_stack_without_the_output(served: Any, aws: list[str], capsys: Any) -> None:
    served.client("cloudformation").create_stack(
        StackName="not-envbuild",
        TemplateBody=json.dumps(
            {
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}}},
            }
        ),
    )
    before = len(
        served.client("stepfunctions").list_executions(stateMachineArn=served.state_machine_arn)[
            "executions"
        ]
    )

    code = main(["run", WORKSHOP, "--stack-name", "not-envbuild", *aws])

    assert code == 2
    assert one_error_line(capsys) == (
        "envbuild: stack not-envbuild (CREATE_COMPLETE) has no output "
        "BuildEnvironmentStateMachineArn: it is not an envbuild stack (template.yaml), or it has "
        "not finished deploying (its outputs: QueueUrl)"
    )
    after = served.client("stepfunctions").list_executions(
        stateMachineArn=served.state_machine_arn
    )["executions"]
    assert len(after) == before


def test_access_denied(served: Any, aws: list[str], capsys: Any) -> None:
    served.aws_faults.deny("cloudformation", "DescribeStacks")

    code = main(["run", WORKSHOP, "--stack-name", "envbuild", *aws])

    assert code == 2
    line = one_error_line(capsys)
    assert line.startswith(
        "envbuild: access denied: your credentials may not call cloudformation:DescribeStacks in "
        f"{served.region} at {served.endpoint_url} (User: arn:aws:iam::"
    )


def test_access_denied_by_step_functions(served: Any, aws: list[str], capsys: Any) -> None:
    served.aws_faults.deny("stepfunctions", "StartExecution")

    code = main(["run", WORKSHOP, "--stack-name", "envbuild", *aws])

    assert code == 2
    assert "may not call states:StartExecution" in one_error_line(capsys)


def test_throttled(served: Any, aws: list[str], capsys: Any) -> None:
    served.aws_faults.throttle("stepfunctions", "StartExecution", times=5)

    code = main(["run", WORKSHOP, "--stack-name", "envbuild", *aws])

    assert code == 2
    assert one_error_line(capsys) == (
        f"envbuild: AWS throttled StartExecution in {served.region} at {served.endpoint_url} "
        "(ThrottlingException, 2 attempts): wait a minute and retry, or set AWS_MAX_ATTEMPTS higher"
    )
    assert served.aws_faults.calls[("stepfunctions", "StartExecution")] >= 2


def test_watch_of_an_unknown_execution(served: Any, aws: list[str], capsys: Any) -> None:
    arn = served.state_machine_arn.replace(":stateMachine:", ":execution:") + ":nope"
    assert main(["watch", arn, "--endpoint", served.endpoint_url]) == 2
    line = one_error_line(capsys)
    assert line.startswith("envbuild: DescribeExecution failed in us-east-1 at http://")
    assert "ExecutionDoesNotExist" in line


def test_watch_of_something_that_is_not_an_execution_arn(capsys: Any) -> None:
    assert main(["watch", "workshop-20261125T120000-abcdef"]) == 2
    assert "is not an execution ARN" in one_error_line(capsys)


@pytest.fixture
def no_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without AWS credentials or configuration."""
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_config")
def test_no_credentials(capsys: Any) -> None:
    import socket

    # something listens (the endpoint check passes), but nothing answers: the credentials are
    # found missing before any request is sent
    with socket.create_server(("127.0.0.1", 0)) as server:
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        args = ["--stack-name", "envbuild", "--region", "eu-west-1", "--endpoint", endpoint]
        code = main(["run", WORKSHOP, *args])
    assert code == 2
    assert one_error_line(capsys) == (
        "envbuild: no AWS credentials found: run `aws configure` or `aws sso login`, "
        "or pass --profile"
    )


@pytest.mark.usefixtures("no_aws_config")
def test_no_region(capsys: Any) -> None:
    assert main(["history", "workshop"]) == 2
    assert one_error_line(capsys) == (
        "envbuild: no AWS region: pass --region, or set AWS_REGION (or a region in your AWS profile)"
    )


@pytest.mark.usefixtures("no_aws_config")
def test_unknown_profile(capsys: Any) -> None:
    assert main(["run", WORKSHOP, "--stack-name", "envbuild", "--profile", "prod"]) == 2
    assert one_error_line(capsys) == (
        "envbuild: AWS profile 'prod' not found: list yours with `aws configure list-profiles`"
    )


def lock(served: Any, environment: str, holder: str) -> None:
    served.client("dynamodb").put_item(
        TableName="envbuild-EnvironmentLocksTable",
        Item={
            "environment": {"S": environment},
            "executionArn": {"S": holder},
            "kind": {"S": "build"},
            "acquiredAt": {"N": "1000"},
            "expiresAt": {"N": "99999999999"},
        },
    )


def locked(served: Any, environment: str) -> bool:
    return "Item" in served.client("dynamodb").get_item(
        TableName="envbuild-EnvironmentLocksTable", Key={"environment": {"S": environment}}
    )


def test_unlock_releases_the_lock_of_a_stopped_build_and_says_whose_it_was(
    served: Any, aws: list[str]
) -> None:
    sfn = served.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="unlock-holder",
        definition=json.dumps(
            {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": True}}}
        ),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    holder = sfn.start_execution(stateMachineArn=machine, name="stopped-build")["executionArn"]
    sfn.stop_execution(executionArn=holder)
    lock(served, "unlock-me", holder)
    out = io.StringIO()

    code = main(["unlock", "unlock-me", "--yes", *aws], out=out)

    assert code == 0
    assert f"released the lock of environment unlock-me (was a build ({holder}" in out.getvalue()
    assert not locked(served, "unlock-me")
    again = io.StringIO()
    assert main(["unlock", "unlock-me", "--yes", *aws], out=again) == 0
    assert again.getvalue() == "environment unlock-me is not locked\n"


def test_unlock_refuses_while_the_holder_runs(served: Any, aws: list[str], capsys: Any) -> None:
    gate = served.dispatcher.hold("CheckServicesFunction")
    spec = json.loads(Path(WORKSHOP).read_text())
    for key, value in served.prerequisites.items():
        spec = json.loads(json.dumps(spec).replace("${" + key + "}", value))
    spec["environment"] = "held"
    spec["namespace"]["name"] = "held.local"
    # its own ECS service names: the served account may hold another environment's web-service
    # (a conflict at Preflight, and the build would never reach the held function)
    for service in spec["services"]:
        service["name"] = f"held-{service['name']}"
    running = served.client("stepfunctions").start_execution(
        stateMachineArn=served.state_machine_arn, name="held-build", input=json.dumps(spec)
    )["executionArn"]
    try:
        assert gate.entered.wait(120)
        code = main(["unlock", "held", "--yes", *aws], out=io.StringIO())
        line = one_error_line(capsys)
    finally:
        gate.release()
        served.dispatcher.hold("CheckServicesFunction").release()
        served.wait(running)

    assert code == 2
    assert f"environment held is held by a build ({running}" in line
    assert "which is RUNNING: it still runs, so the lock stays" in line


def test_unlock_without_a_terminal_asks_for_yes(served: Any, aws: list[str], capsys: Any) -> None:
    lock(served, "no-tty", "arn:aws:states:us-east-1:123456789012:execution:x:gone")

    code = main(["unlock", "no-tty", *aws], out=io.StringIO())

    assert code == 2
    assert "pass --yes to release it (no terminal to confirm on)" in one_error_line(capsys)
    assert locked(served, "no-tty")


def test_history_tells_plans_prunes_and_rollbacks_apart_and_watch_follows_a_plan(
    served: Any, aws: list[str], tmp_path: Path
) -> None:
    spec = json.loads(Path(WORKSHOP).read_text())
    spec["environment"] = "kinds"
    spec["namespace"]["name"] = "kinds.local"
    for service in spec["services"]:  # ECS service names of their own in the shared cluster
        service["name"] = "k" + service["name"]
    write = lambda name, document: (tmp_path / name).write_text(json.dumps(document))  # noqa: E731
    write("full.json", spec)
    write("two.json", {**spec, "services": spec["services"][:2], "prune": True})
    stack = ["--stack-name", "envbuild", *aws]
    out = io.StringIO()
    assert main(["plan", "full.json", *stack], out=out) == 0, out.getvalue()
    assert main(["run", "full.json", *stack], out=out) == 0, out.getvalue()
    assert main(["run", "two.json", *stack], out=out) == 0, out.getvalue()
    assert "\nPrune: removed 1 ECS service(s)" in out.getvalue()
    served.world.faults.tasks_fail_to_start("kinds_kapi")  # the next build fails: rolled back
    try:
        write("changed.json", {**spec, "services": [{**spec["services"][1], "image": "x:2"}]})
        assert main(["run", "changed.json", *stack], out=out) == 1
    finally:
        served.world.faults.clear_tasks_fail_to_start("kinds_kapi")
    # a plan started elsewhere (console, EventBridge) is watched to its table
    text = (tmp_path / "full.json").read_text()
    for key, value in served.prerequisites.items():
        text = text.replace("${" + key + "}", value)
    arn = served.client("stepfunctions").start_execution(
        stateMachineArn=served.state_machine_arn,
        name="console-plan",
        input=json.dumps({**json.loads(text), "plan": True}),
    )["executionArn"]
    out = io.StringIO()
    assert main(["watch", arn, "--endpoint", served.endpoint_url], out=out) == 0, out.getvalue()
    assert "Plan for environment kinds (nothing was changed):" in out.getvalue()
    out = io.StringIO()

    assert main(["history", "kinds", *aws], out=out) == 0

    kinds = [line.split()[2] for line in out.getvalue().splitlines()[2:]]
    assert kinds[0] == "plan"  # the console's, newest
    assert sorted(set(kinds)) == ["build", "plan", "prune", "rollback"], out.getvalue()
