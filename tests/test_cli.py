"""The CLI as a user runs it: embedded emulator, a served emulator (--endpoint), and its errors."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from envbuild.cli import CliError, error_message, fill_variables, main, resources_env

# Served emulators share moto's process-wide backends: under xdist these tests stay in one
# worker, in file order (as in a serial run), with tests/test_cli.py and tests/test_cli_stack.py.
pytestmark = pytest.mark.xdist_group("served_emulator")


REPO = Path(__file__).resolve().parent.parent


def test_variables_are_filled_from_the_first_source_and_all_missing_ones_named() -> None:
    assert fill_variables("${A}-${B}", {"A": "env"}, {"A": "emu", "B": "b"}) == "env-b"
    with pytest.raises(CliError, match=r"\$\{X\}, \$\{Y\}"):
        fill_variables("${X} ${Y} ${A}", {"A": "1"})


def test_a_lambda_cause_shows_its_error_message() -> None:
    assert error_message('{"errorType": "InvalidSpec", "errorMessage": "port: bad"}') == "port: bad"
    assert error_message("plain cause") == "plain cause"


def test_resources_env_uses_the_workshop_step_8_names() -> None:
    summary = {
        "namespace": {
            "id": "ns-1",
            "arn": "arn:aws-cn:servicediscovery:cn-north-1:111122223333:namespace/ns-1",
            "name": "workshop.local",
            "hostedZoneId": "Z1",
        },
        "cluster": "workshop-cluster",
        "outputs": {"NAMESPACE_ID": "ns-1", "PAYMENTS_V2_SERVICE_ID": "srv-1"},
        "services": [
            {
                "name": "payments-v2",
                "taskDefinition": "workshop-payments-v2:3",
                "dnsName": "payments-v2.workshop.local",
                "ips": [],
            }
        ],
    }
    text = resources_env(summary)
    assert "export NAMESPACE_ID=ns-1\n" in text
    assert "export PAYMENTS_V2_SERVICE_ID=srv-1\n" in text
    # ARNs in the namespace's partition, Region and account
    assert (
        "export PAYMENTS_V2_SERVICE_ARN="
        "arn:aws-cn:servicediscovery:cn-north-1:111122223333:service/srv-1\n"
    ) in text
    assert (
        "export PAYMENTS_V2_ECS_SERVICE_ARN="
        "arn:aws-cn:ecs:cn-north-1:111122223333:service/workshop-cluster/payments-v2-service\n"
    ) in text
    assert (
        "export PAYMENTS_V2_TASK_DEFINITION_ARN="
        "arn:aws-cn:ecs:cn-north-1:111122223333:task-definition/workshop-payments-v2:3\n"
    ) in text


def test_run_builds_the_workshop_on_the_embedded_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()

    code = main(["run", str(REPO / "events" / "workshop.json"), "--time-scale", "0"], out=out)

    text = out.getvalue()
    assert code == 0, text
    for name, count in (("web", 2), ("api", 2), ("db", 1)):
        line = next(
            line for line in text.splitlines() if f"{name}.workshop.local" in line and "->" in line
        )
        assert len(line.split("->")[1].split(",")) == count
    assert "✓ Verify DNS" in text
    assert "✓ Create Namespace" in text
    env = (tmp_path / "workshop-resources.env").read_text()
    for key in ("NAMESPACE_ID", "WEB_SERVICE_ID", "API_SERVICE_ID", "DB_SERVICE_ID"):
        assert f"export {key}=" in env


def test_the_run_timeline_shows_the_aws_time_the_build_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`envbuild run` (default time scale): each line's time is the emulated AWS time of its state,
    not the handlers' CPU time scaled up: the namespace is first checked after the first poll wait
    (50 s) plus the modelled Lambda durations in series before that check ends (the INIT of the
    five functions' cold starts, envbuild_emulator.durations, and their calls' round trips: a
    few dozen calls of 30 ms), and the build ends after the modelled critical path (namespace 60 s
    + task start 30 s + registration 5 s), within the polls' overshoot and those durations."""
    from envbuild_emulator.durations import INIT_SECONDS

    monkeypatch.chdir(tmp_path)
    out = io.StringIO()

    code = main(["run", str(REPO / "events" / "workshop.json")], out=out)

    text = out.getvalue()
    assert code == 0, text
    assert "(times: seconds since the start, modelled AWS time on the embedded emulator)" in text
    stamps = [
        (float(match[1]), match[2]) for match in re.finditer(r"^ +(\d+\.\d)s  . (.*)$", text, re.M)
    ]
    first_check = next(t for t, state in stamps if state.startswith("Check Namespace Operation"))
    cold_in_series = ("validate_spec", "acquire_lock", "preflight", "create_namespace")
    inits = sum(INIT_SECONDS[m] for m in (*cold_in_series, "check_namespace_operation"))
    assert 50 + inits - 0.1 <= first_check <= 50 + inits + 2, text
    last, final_state = stamps[-1]
    assert final_state == "Release Lock", text
    assert 95 <= last <= 110, text


def test_plan_prints_one_row_per_resource_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()

    code = main(["plan", str(REPO / "events" / "workshop.json"), "--time-scale", "0"], out=out)

    text = out.getvalue()
    assert code == 0, text
    lines = text.split("(nothing was changed):\n", 1)[1].splitlines()
    assert lines[0].split() == ["RESOURCE", "NAME", "ACTION", "CHANGES"]
    assert lines[1].split()[:3] == ["namespace", "workshop.local", "create"]
    assert lines[2:6] == [
        "  registry        web                create",
        "  logGroup        /ecs/workshop_web  create",
        "  taskDefinition  workshop_web       create",
        "  ecsService      web-service        create",
    ]
    assert (
        "plan for workshop: 13 to create, 0 to update, 0 to replace, 0 to remove, 0 unchanged."
        in text
    )
    assert "✓ Plan Changes" in text
    assert not (tmp_path / "workshop-resources.env").exists()


def test_plan_table_shows_changes_then_the_note() -> None:
    from envbuild.plan import format_table

    rows = [
        {"kind": "ecsService", "name": "web-service", "action": "unchanged", "note": "on web:1"},
        {
            "kind": "taskDefinition",
            "name": "workshop_web",
            "action": "update",
            "fields": {"image": ["a", "b"], "cpu": ["256", "512"]},
            "note": "registers a new revision after workshop_web:1",
        },
    ]
    assert format_table(rows) == [
        "RESOURCE        NAME          ACTION     CHANGES",
        "ecsService      web-service   unchanged  on web:1",
        "taskDefinition  workshop_web  update     image: a -> b; cpu: 256 -> 512"
        " (registers a new revision after workshop_web:1)",
    ]


def test_run_exits_non_zero_with_error_and_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = json.loads((REPO / "events" / "workshop.json").read_text())
    spec["services"][0]["desiredcount"] = 3
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    out = io.StringIO()

    code = main(["run", "bad.json", "--time-scale", "0"], out=out)

    assert code == 1
    assert "Build FAILED: InvalidSpec:" in out.getvalue()
    assert "did you mean 'desiredCount'" in out.getvalue()
    assert not (tmp_path / "workshop-resources.env").exists()


def test_run_against_a_served_emulator_builds_any_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envbuild_emulator.emulator import Emulator

    monkeypatch.chdir(tmp_path)
    spec = {
        "environment": "demo",
        "namespace": {"name": "corp.example", "vpcId": "${VPC_ID}"},
        "cluster": "${CLUSTER_NAME}",
        "network": {"subnets": ["${PRIVATE_SUBNET_1}"], "securityGroups": ["${ECS_SG}"]},
        "services": [
            {"name": "frontend", "image": "nginx:1.27", "port": 8080, "desiredCount": 3},
            {"name": "orders", "image": "orders:2", "port": 5000},
        ],
    }
    (tmp_path / "demo.json").write_text(json.dumps(spec))
    with Emulator(port=0, time_scale=0.0) as emulator:
        assert emulator.endpoint_url
        out = io.StringIO()
        code = main(["run", "demo.json", "--endpoint", emulator.endpoint_url], out=out)
        assert code == 0, out.getvalue()
        # what the workshop's step 6 shows, asked over HTTP as the AWS CLI does
        sd = emulator.client("servicediscovery")
        namespaces = sd.list_namespaces()["Namespaces"]
        assert [n["Name"] for n in namespaces] == ["corp.example"]
        registries = {s["Name"]: s["Id"] for s in sd.list_services()["Services"]}
        assert sorted(registries) == ["frontend", "orders"]
        instances = sd.list_instances(ServiceId=registries["frontend"])["Instances"]
        assert len(instances) == 3
        health = sd.get_instances_health_status(ServiceId=registries["frontend"])["Status"]
        assert set(health.values()) == {"HEALTHY"}
        ecs = emulator.client("ecs")
        services = ecs.describe_services(
            cluster=emulator.prerequisites["CLUSTER_NAME"],
            services=["frontend-service", "orders-service"],
        )["services"]
        assert [(s["runningCount"], s["desiredCount"]) for s in services] == [(3, 3), (1, 1)]
    assert (
        "AWS_ENDPOINT_URL" not in os.environ
        or os.environ["AWS_ENDPOINT_URL"] != emulator.endpoint_url
    )


def test_run_against_nothing_says_so_in_one_line_at_once(tmp_path: Path, capsys: Any) -> None:
    """Checked before any SDK call: the answer names the fix, with no retries behind it."""
    code = main(["run", str(REPO / "events" / "workshop.json"), "--endpoint", "http://127.0.0.1:9"])
    assert code == 2
    assert capsys.readouterr().err == (
        "envbuild: nothing listens at 127.0.0.1:9 (--endpoint http://127.0.0.1:9): start the"
        " emulator with `make emulator` (or `.venv/bin/envbuild emulator --port N`) and pass the"
        " URL it prints\n"
    )


@pytest.mark.parametrize("command", ["run", "plan", "teardown", "watch", "history", "unlock"])
def test_an_endpoint_without_a_scheme_is_answered_with_the_fix(command: str, capsys: Any) -> None:
    first = {
        "watch": "arn:aws:states:us-east-1:123456789012:execution:m:e",
        "history": "workshop",
        "unlock": "workshop",
    }.get(command, str(REPO / "events" / "workshop.json"))

    code = main([command, first, "--endpoint", "localhost:5000"])

    assert code == 2
    assert capsys.readouterr().err.startswith(
        "envbuild: --endpoint 'localhost:5000' is not an http(s) URL:"
        " use --endpoint http://localhost:5000 "
    )


def test_teardown_on_the_embedded_emulator_reports_nothing_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envbuild.cli import parser, target

    monkeypatch.chdir(tmp_path)
    spec = str(REPO / "events" / "workshop.json")
    args = parser().parse_args(["run", spec, "--time-scale", "0"])
    out = io.StringIO()
    with target(args, out) as where:  # the lookup by name finds both state machines
        build = where.state_machine("envbuild-BuildEnvironmentStateMachine")
        teardown = where.state_machine("envbuild-TeardownEnvironmentStateMachine")
        assert build != teardown
    # a fresh embedded account: nothing was built in it
    code = main(["teardown", spec, "--time-scale", "0", "--delete-log-groups", "--yes"], out=out)

    text = out.getvalue()
    assert code == 0, text
    assert "Tearing down environment workshop" in text
    assert "nothing found for environment workshop" in text


def test_teardown_against_a_served_emulator_reports_removed_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envbuild_emulator.emulator import Emulator

    monkeypatch.chdir(tmp_path)
    spec = str(REPO / "events" / "workshop.json")
    with Emulator(port=0, time_scale=0.0) as emulator:
        assert emulator.endpoint_url
        out = io.StringIO()
        assert main(["run", spec, "--endpoint", emulator.endpoint_url], out=out) == 0

        code = main(
            [
                "teardown",
                spec,
                "--yes",
                "--endpoint",
                emulator.endpoint_url,
                "--delete-log-groups",
                "--deregister-task-definitions",
            ],
            out=out,
        )

        text = out.getvalue()
        assert code == 0, text
        assert "✓ Delete Namespace" in text
        assert "removed ECS services: api-service, db-service, web-service" in text
        assert "removed namespace: workshop.local" in text
        assert "removed task definitions: workshop_api:1, workshop_db:1, workshop_web:1" in text
        assert emulator.client("servicediscovery").list_namespaces()["Namespaces"] == []


def test_teardown_exits_non_zero_with_error_and_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = json.loads((REPO / "events" / "workshop.json").read_text())
    spec["namespace"]["nmae"] = "x"
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    out = io.StringIO()

    code = main(["teardown", "bad.json", "--time-scale", "0", "--yes"], out=out)

    assert code == 1
    assert "Teardown FAILED: InvalidSpec:" in out.getvalue()
    assert "namespace.nmae" in out.getvalue()


@pytest.mark.parametrize("command", ["run", "plan", "teardown"])
@pytest.mark.parametrize(
    ("content", "problem"),
    [  # checked before any emulator starts
        (
            b'{"environment": "caf\xe9"}',
            "not UTF-8 text (byte 0xe9 on line 1): save the spec as UTF-8",
        ),
        (
            b'{"environment": "workshop",\n "services": [}',
            "not valid JSON (line 2, column 15: Expecting value)",
        ),
        (b"[1, 2]\n", "the spec must be a JSON object {…}, got an array"),
        (b'"hello"\n', "the spec must be a JSON object {…}, got a string"),
    ],
)
def test_a_spec_file_that_is_not_a_json_object_is_one_line_naming_file_and_problem(
    tmp_path: Path, capsys: Any, command: str, content: bytes, problem: str
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_bytes(content)

    code = main([command, str(spec)], out=io.StringIO())

    assert code == 2
    err = capsys.readouterr().err
    assert err == f"envbuild: {spec}: {problem}\n"  # one line: no traceback


def test_run_redeploy_starts_a_new_deployment_of_an_unchanged_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--redeploy: a mutable tag moved; the spec file is left as it is."""
    from envbuild_emulator.emulator import Emulator

    monkeypatch.chdir(tmp_path)
    spec = {
        "environment": "demo",
        "namespace": {"name": "corp.example", "vpcId": "${VPC_ID}"},
        "cluster": "${CLUSTER_NAME}",
        "network": {"subnets": ["${PRIVATE_SUBNET_1}"], "securityGroups": ["${ECS_SG}"]},
        "services": [{"name": "frontend", "image": "nginx:latest", "port": 8080}],
    }
    (tmp_path / "demo.json").write_text(json.dumps(spec))
    with Emulator(port=0, time_scale=0.0) as emulator:
        url = str(emulator.endpoint_url)
        assert main(["run", "demo.json", "--endpoint", url], out=io.StringIO()) == 0
        ecs = emulator.client("ecs")
        cluster = emulator.prerequisites["CLUSTER_NAME"]

        def deployment() -> str:
            service = ecs.describe_services(cluster=cluster, services=["frontend-service"])
            return str(service["services"][0]["deployments"][0]["id"])

        first = deployment()
        out = io.StringIO()
        assert main(["run", "demo.json", "--endpoint", url, "--output", "json"], out=out) == 0
        assert deployment() == first  # unchanged spec: nothing to do
        out = io.StringIO()
        code = main(
            ["run", "demo.json", "--endpoint", url, "--redeploy", "--output", "json"], out=out
        )
        assert code == 0
        assert deployment() != first
        document = json.loads(out.getvalue())
        assert [
            (c["kind"], c["name"], c["action"], c["fields"])
            for c in document["changes"]
            if c["action"] != "unchanged"
        ] == [
            (
                "ecsService",
                "frontend-service",
                "update",
                {"deployment": ["(redeploy)", "new deployment"]},
            )
        ]
    assert json.loads((tmp_path / "demo.json").read_text()) == spec


@pytest.mark.parametrize("command", ["run", "plan", "teardown"])
def test_a_spec_over_step_functions_input_limit_is_refused_before_anything_starts(
    tmp_path: Path, capsys: Any, command: str
) -> None:
    """StartExecution refuses an input over 256 KiB (InvalidExecutionInput): said at once, with
    the size, the limit and what to do; a spec just under it is sent."""
    spec = json.loads((REPO / "events" / "workshop.json").read_text())
    spec["services"][0]["environment"] = {"PADDING": "x" * 270_000}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(spec, indent=2))

    code = main([command, str(path)], out=io.StringIO())

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"envbuild: {path}: the spec is 270,")
    assert "at most 262,144 bytes (256 KiB) as an execution's input" in err
    assert err.count("\n") == 1  # one line, no traceback


def test_the_execution_input_is_compact_json_and_exact_at_the_limit() -> None:
    from envbuild.cli import MAX_EXECUTION_INPUT_BYTES, execution_input

    base = {"environment": "e", "pad": ""}
    room = MAX_EXECUTION_INPUT_BYTES - len(json.dumps(base, separators=(",", ":")))
    at_limit = {**base, "pad": "é" * (room // 2)}  # 2 bytes each in UTF-8
    text = execution_input(at_limit, "spec.json")
    assert ", " not in text
    assert len(text.encode()) <= MAX_EXECUTION_INPUT_BYTES
    with pytest.raises(CliError, match=r"spec\.json: the spec is 262,14[5-6] bytes"):
        execution_input({**base, "pad": "é" * (room // 2 + 1)}, "spec.json")
