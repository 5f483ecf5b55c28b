"""What the CLI shows after an execution, as a user sees it: plans through `run`, the changes
table, `--output json` (one document on stdout, progress on stderr), `teardown --plan` and the
confirmation, and the progress lines (no repeats, a failed step in red and never followed by a ✓).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envbuild.cli import main
from envbuild.follow import Clock, Progress
from envbuild.report import build_changes, format_table

REPO = Path(__file__).resolve().parent.parent
WORKSHOP = str(REPO / "events" / "workshop.json")


@pytest.fixture(scope="module")
def served() -> Iterator[Any]:
    from envbuild_emulator.emulator import Emulator

    with Emulator(port=0, time_scale=0.0) as emulator:
        yield emulator


@pytest.fixture
def shell(served: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """A user's shell on the served emulator: in tmp_path, the account's variables exported."""
    monkeypatch.chdir(tmp_path)
    for key, value in served.prerequisites.items():
        monkeypatch.setenv(key, value)
    yield ["--endpoint", served.endpoint_url]
    served.world.faults.clear_tasks_fail_to_start("db-service")


def spec_file(tmp_path: Path, name: str, **changes: Any) -> str:
    spec = json.loads(Path(WORKSHOP).read_text())
    spec.update(changes)
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return str(path)


# -- the change rows ------------------------------------------------------------------------------
def test_rows_of_the_contract_and_of_an_older_plan_read_the_same() -> None:
    new = {
        "changes": [
            {
                "kind": "ecsService",
                "name": "web-service",
                "action": "update",
                "fields": {"taskDefinition": ["workshop_web:1", "workshop_web:2"]},
                "note": "",
            }
        ]
    }
    old = {
        "plan": [
            {
                "type": "ecsService",
                "name": "web-service",
                "action": "update",
                "changes": ["taskDefinition: workshop_web:1 -> workshop_web:2"],
                "note": "",
            }
        ],
        "changes": 1,  # the older plan's count: not rows
    }
    assert build_changes(new) == build_changes(old) == new["changes"]
    assert format_table(build_changes(new)) == [
        "RESOURCE    NAME         ACTION  CHANGES",
        "ecsService  web-service  update  taskDefinition: workshop_web:1 -> workshop_web:2",
    ]


def test_a_build_prints_its_changes_after_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envbuild.cli import finish, parser

    monkeypatch.chdir(tmp_path)
    summary = {
        "environment": "workshop",
        "namespace": {
            "name": "workshop.local",
            "id": "ns-1",
            "arn": "arn:aws:servicediscovery:us-east-1:111122223333:namespace/ns-1",
        },
        "cluster": "c",
        "services": [
            {
                "name": "web",
                "dnsName": "web.workshop.local",
                "ips": ["10.0.0.1"],
                "taskDefinition": "workshop_web:2",
            }
        ],
        "outputs": {"NAMESPACE_ID": "ns-1", "WEB_SERVICE_ID": "srv-1"},
        "notInSpec": ["db-service"],
        "probe": {
            "requested": True,
            "done": True,
            "message": "1 name answered",
            "answers": {"web.workshop.local": ["10.0.0.1"]},
        },
        "changes": [
            {
                "kind": "namespace",
                "name": "workshop.local",
                "action": "unchanged",
                "fields": {},
                "note": "",
            },
            {
                "kind": "ecsService",
                "name": "web-service",
                "action": "update",
                "fields": {
                    "taskDefinition": ["workshop_web:1", "workshop_web:2"],
                    "desiredCount": [1, 2],
                },
                "note": "",
            },
        ],
    }
    described = {
        "executionArn": "arn:aws:states:us-east-1:111122223333:execution:envbuild-BuildEnvironmentStateMachine:x",
        "stateMachineArn": "arn:aws:states:us-east-1:111122223333:stateMachine:envbuild-BuildEnvironmentStateMachine",
        "status": "SUCCEEDED",
        "input": json.dumps({"environment": "workshop"}),
        "output": json.dumps(summary),
    }

    class NoHistory:
        def get_execution_history(self, **_: Any) -> dict[str, Any]:
            return {"events": []}

    out = io.StringIO()
    assert finish(NoHistory(), described, parser().parse_args(["run", "x.json"]), out) == 0

    text = out.getvalue()
    assert text.index("Environment workshop is ready.") < text.index("Changes:")
    assert (
        "  ecsService  web-service     update     taskDefinition: workshop_web:1 -> workshop_web:2;"
        " desiredCount: 1 -> 2\n" in text
    )
    assert 'Not in the spec (left running; "prune": true removes them): db-service' in text
    assert "DNS probe: 1 name answered\n  web.workshop.local  ->  10.0.0.1" in text


# -- plans, through every command -----------------------------------------------------------------
def test_a_spec_with_plan_true_runs_as_a_plan(shell: list[str], tmp_path: Path) -> None:
    out = io.StringIO()

    code = main(["run", spec_file(tmp_path, "plan.json", plan=True), *shell], out=out)

    text = out.getvalue()
    assert code == 0, text
    assert "Plan for environment workshop (nothing was changed):" in text
    assert re.search(r"^  ecsService +web-service +create$", text, re.M)
    assert "Traceback" not in text
    assert not (tmp_path / "workshop-resources.env").exists()


def test_plan_output_json_is_one_document_on_stdout_and_progress_on_stderr(
    shell: list[str], capsys: Any
) -> None:
    code = main(["plan", WORKSHOP, "--output", "json", *shell])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)  # the whole of stdout: one JSON document
    assert document["status"] == "SUCCEEDED"
    assert document["kind"] == "plan"
    assert document["execution"].startswith("arn:aws:states:")
    assert {
        "kind": "ecsService",
        "name": "web-service",
        "action": "create",
        "fields": {},
        "note": "",
    } in document["changes"]
    assert document["counts"]["create"] == len(document["changes"])
    assert document["summary"]["environment"] == "workshop"
    assert "✓ Plan Changes" in captured.err
    assert "error" not in document


def test_a_failed_build_in_json_has_error_cause_and_rollback(
    served: Any, shell: list[str], capsys: Any
) -> None:
    served.world.faults.tasks_fail_to_start("db-service")

    code = main(["run", WORKSHOP, "--output", "json", *shell])

    captured = capsys.readouterr()
    assert code == 1
    document = json.loads(captured.out)
    assert document["status"] == "FAILED"
    assert document["error"] == "DeploymentFailed"
    assert "db-service" in document["cause"]
    assert document["rollback"].startswith("removed ")
    assert "namespace workshop.local" in document["rollback"]
    # progress on stderr: the poll loop as one line per change, the failure once, in place
    assert "✗ Check Services (" in captured.err
    assert "✓ Check Services" not in captured.err
    assert "Wait For Services" not in captured.err


def test_a_failed_build_as_text(served: Any, shell: list[str]) -> None:
    served.world.faults.tasks_fail_to_start("db-service")
    out = io.StringIO()

    code = main(["run", WORKSHOP, *shell], out=out)

    text = out.getvalue()
    assert code == 1
    assert "\nBuild FAILED: DeploymentFailed: 1 of 3 services failed to deploy: db-service" in text
    assert "\nRollback: removed " in text
    lines = [line for line in text.splitlines() if "Check Services" in line]
    assert len(lines) == len({line.split("s  ", 1)[1] for line in lines}), lines  # no repeats
    # Check Services reads Cloud Map only once a service's tasks all run: counts of running
    # tasks until then, never "ready"
    assert re.search(r"db-service 0/1 running(?! ready)", text)
    assert "db-service ready" not in text


# -- teardown: --plan and the confirmation -------------------------------------------------------
def test_teardown_plan_says_what_would_be_removed_and_removes_nothing(
    served: Any, shell: list[str], capsys: Any
) -> None:
    assert main(["run", WORKSHOP, *shell], out=io.StringIO()) == 0
    out = io.StringIO()

    code = main(["teardown", WORKSHOP, "--plan", "--delete-log-groups", *shell], out=out)

    text = out.getvalue()
    assert code == 0, text
    assert "Teardown plan for environment workshop (nothing was removed):" in text
    assert re.search(r"^  ecsService +web-service +remove$", text, re.M)
    assert re.search(r"^  namespace +workshop.local +remove +ns-", text, re.M)
    assert re.search(r"^  logGroup +/ecs/workshop_web +remove$", text, re.M)
    assert "✓ Plan Teardown Only" in text
    namespaces = served.client("servicediscovery").list_namespaces()["Namespaces"]
    assert [n["Name"] for n in namespaces] == ["workshop.local"]  # still there

    # a script (no terminal) must say --yes; nothing is removed
    code = main(["teardown", WORKSHOP, *shell], out=io.StringIO())
    assert code == 2
    assert "pass --yes" in capsys.readouterr().err
    assert served.client("servicediscovery").list_namespaces()["Namespaces"]

    # on a terminal: the plan, then the question; "n" removes nothing
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    from envbuild.cli import parser, teardown

    out = Terminal()
    args = parser().parse_args(["teardown", WORKSHOP, *shell])
    assert teardown(args, out, stdin=Terminal("n\n")) == 1
    assert "Remove these resources? [y/N] Nothing was removed." in out.getvalue()
    assert served.client("servicediscovery").list_namespaces()["Namespaces"]
    # "y" removes
    out = Terminal()
    assert teardown(args, out, stdin=Terminal("y\n")) == 0, out.getvalue()
    assert served.client("servicediscovery").list_namespaces()["Namespaces"] == []


def test_teardown_json_lists_what_it_removed(served: Any, shell: list[str], capsys: Any) -> None:
    assert main(["run", WORKSHOP, *shell], out=io.StringIO()) == 0

    code = main(["teardown", WORKSHOP, "--yes", "--output", "json", *shell])

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["kind"] == "teardown"
    assert {
        "kind": "ecsService",
        "name": "db-service",
        "action": "remove",
        "fields": {},
        "note": "",
    } in document["changes"]
    assert any(r["kind"] == "namespace" and r["action"] == "remove" for r in document["changes"])


# -- progress -----------------------------------------------------------------------------------
DEFINITION = {
    "States": {
        "Validate Spec": {"Type": "Task", "Next": "Check Services"},
        "Check Services": {"Type": "Task", "ResultPath": "$.deployment", "Next": "Ready?"},
        "Ready?": {"Type": "Choice", "Choices": [], "Default": "Wait For Services"},
        "Wait For Services": {"Type": "Wait", "Next": "Check Services"},
        "Build Failed": {"Type": "Fail"},
    }
}


def entered(kind: str, name: str) -> dict[str, Any]:
    return {"type": kind, "stateEnteredEventDetails": {"name": name}}


def exited(kind: str, name: str, output: Any = None) -> dict[str, Any]:
    return {
        "type": kind,
        "stateExitedEventDetails": {"name": name, "output": json.dumps(output or {})},
    }


def check(running: int) -> list[dict[str, Any]]:
    message = (
        f"1 of 1 services not ready after 3 checks: web-service: {running}/2 tasks running,"
        " 0/2 registered in Cloud Map (last event: started)"
    )
    return [
        entered("TaskStateEntered", "Check Services"),
        exited(
            "TaskStateExited",
            "Check Services",
            {"deployment": {"message": message, "actions": {"web-service": "created"}}},
        ),
        entered("ChoiceStateEntered", "Ready?"),
        entered("WaitStateEntered", "Wait For Services"),
    ]


def render(events: list[dict[str, Any]], live: bool | None = None) -> str:
    out = io.StringIO()
    progress = Progress(DEFINITION, out, Clock(lambda _e: 5.0, "test time"), live=live)
    for event in events:
        progress.show(event)
    progress.close()
    return out.getvalue()


def test_a_poll_loop_prints_a_line_only_when_a_count_changes() -> None:
    text = render(
        [*check(0), *check(0), *check(0), *check(2), entered("FailStateEntered", "Build Failed")]
    )

    assert text.splitlines() == [
        "     5.0s  … Check Services: web-service 0/2 running, 0/2 registered, 0/2 healthy",
        "     5.0s  … Check Services: web-service 2/2 running, 0/2 registered, 0/2 healthy",
        "     5.0s  ✓ Check Services (4 checks)",
        "     5.0s  ✗ Build Failed",
    ]


def test_a_failed_step_is_a_red_cross_never_followed_by_its_check_mark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failure = [
        entered("TaskStateEntered", "Validate Spec"),
        {"type": "LambdaFunctionScheduled"},
        {
            "type": "LambdaFunctionFailed",
            "lambdaFunctionFailedEventDetails": {"error": "InvalidSpec"},
        },
        exited("TaskStateExited", "Validate Spec"),
        entered("FailStateEntered", "Build Failed"),
    ]
    assert render(failure).splitlines() == [
        "     5.0s  ✗ Validate Spec: InvalidSpec",
        "     5.0s  ✗ Build Failed",
    ]
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[1;31m✗ Validate Spec: InvalidSpec" in render(failure, live=True)  # red
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[1;31m" not in render(failure, live=True)


def test_a_retried_step_says_so_once_and_then_succeeds() -> None:
    events = [
        entered("TaskStateEntered", "Validate Spec"),
        {"type": "LambdaFunctionScheduled"},
        {
            "type": "LambdaFunctionFailed",
            "lambdaFunctionFailedEventDetails": {"error": "Lambda.ServiceException"},
        },
        {"type": "LambdaFunctionScheduled"},
        exited("TaskStateExited", "Validate Spec"),
    ]
    assert render(events).splitlines() == [
        "     5.0s  ↻ Validate Spec: Lambda.ServiceException, retrying",
        "     5.0s  ✓ Validate Spec",
    ]


def test_poll_counts_show_running_tasks_before_cloud_map_is_read_and_never_ready() -> None:
    from envbuild.follow import service_counts

    message = (
        "2 of 3 services not ready: db-service: 0/1 tasks running (Cloud Map read once they all"
        " run) (last event: started 1 task); api-service: 2/2 tasks running, 1/2 registered in"
        " Cloud Map"
    )
    actions = {"web-service": "created", "api-service": "created", "db-service": "created"}
    assert service_counts({"message": message, "actions": actions}) == (
        "web-service ready · api-service 2/2 running, 1/2 registered, 1/2 healthy"
        " · db-service 0/1 running"
    )
