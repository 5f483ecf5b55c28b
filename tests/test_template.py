"""Static checks of template.yaml (and the ASL it references) against docs/design.md and the issue.

These need no AWS and no emulator: they parse the SAM template with a YAML loader that understands
CloudFormation's short tags (!Sub, !GetAtt, !Ref, ...).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from envbuild_lambda.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
DESIGN = ROOT / "docs" / "design.md"
EVENTS = ROOT / "events"


# --- loading ----------------------------------------------------------------------------------
class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Tag value` into the long form `{"Fn::Tag": value}` / `{"Ref": v}`."""


def _construct_cfn_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - YAML has no other node kinds
        raise TypeError(node)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template() -> dict[str, Any]:
    with TEMPLATE.open(encoding="utf-8") as f:
        doc = yaml.load(f, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def design_functions(teardown: bool | None = None) -> dict[str, tuple[str, str]]:
    """logical id -> (handler, DefinitionSubstitutions key), from the tables in docs/design.md.

    teardown=True: the table of its "## Teardown" section; False: every other table; None: all.
    """
    found: dict[str, tuple[str, str]] = {}
    for section in re.split(r"^## ", DESIGN.read_text(encoding="utf-8"), flags=re.MULTILINE):
        if teardown is not None and section.startswith("Teardown") != teardown:
            continue
        rows = re.findall(
            r"^\|\s*(\w+Function)\s*\|\s*([\w.]+)\s*\|\s*(\w+Arn)\s*\|\s*$",
            section,
            flags=re.MULTILINE,
        )
        found.update({logical_id: (handler, key) for logical_id, handler, key in rows})
    return found


DESIGN_FUNCTIONS = design_functions()
#: The functions of each state machine (logical id -> its design.md rows).
MACHINE_FUNCTIONS = {
    "BuildEnvironmentStateMachine": design_functions(teardown=False),
    # the teardown takes the build's lock too (one build or teardown per environment)
    "TeardownEnvironmentStateMachine": design_functions(teardown=True)
    | {k: v for k, v in design_functions(teardown=False).items() if k == "AcquireLockFunction"},
}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: res
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }


def state_machine(
    template: dict[str, Any], logical_id: str = "BuildEnvironmentStateMachine"
) -> dict[str, Any]:
    res = template["Resources"][logical_id]
    assert res["Type"] == "AWS::Serverless::StateMachine"
    props = res["Properties"]
    assert isinstance(props, dict)
    return props


def effective(template: dict[str, Any], fn: dict[str, Any], prop: str) -> Any:
    """A function property after Globals (local value wins, maps merge)."""
    glob = template.get("Globals", {}).get("Function", {}).get(prop)
    local = fn["Properties"].get(prop)
    if isinstance(glob, dict) and isinstance(local, dict):
        return {**glob, **local}
    return glob if local is None else local


def statements(fn: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in fn["Properties"].get("Policies", []) or []:
        if isinstance(policy, dict) and "Statement" in policy:
            yield from policy["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- functions --------------------------------------------------------------------------------
def test_design_table_parsed() -> None:
    assert len(DESIGN_FUNCTIONS) >= 8, DESIGN_FUNCTIONS
    # ten teardown steps and ReleaseLock (the build releases its lock with a direct DynamoDB
    # integration instead)
    assert len(design_functions(teardown=True)) == 11
    assert set(design_functions(teardown=False)).isdisjoint(design_functions(teardown=True))
    # AcquireLock is shared: the teardown takes the build's lock
    assert len(MACHINE_FUNCTIONS["TeardownEnvironmentStateMachine"]) == 12


def test_functions_match_design(template: dict[str, Any]) -> None:
    fns = functions(template)
    assert set(fns) == set(DESIGN_FUNCTIONS)
    for logical_id, (handler, _key) in DESIGN_FUNCTIONS.items():
        assert fns[logical_id]["Properties"]["Handler"] == handler, logical_id


def test_every_function_is_python313_on_arm64(template: dict[str, Any]) -> None:
    for logical_id, fn in functions(template).items():
        assert effective(template, fn, "Runtime") == "python3.13", logical_id
        assert effective(template, fn, "Architectures") == ["arm64"], logical_id
        assert effective(template, fn, "CodeUri") == "functions/", logical_id
        assert effective(template, fn, "Tracing") == "Active", logical_id


@pytest.mark.parametrize("logical_id", sorted(DESIGN_FUNCTIONS))
def test_handler_module_exists(template: dict[str, Any], logical_id: str) -> None:
    fn = functions(template)[logical_id]
    module, _, attr = fn["Properties"]["Handler"].rpartition(".")
    code_uri = ROOT / effective(template, fn, "CodeUri")
    path = code_uri / (module.replace(".", "/") + ".py")
    assert path.is_file(), f"{logical_id}: handler module {path.relative_to(ROOT)} missing"
    assert re.search(rf"^(def|async def)\s+{attr}\b|^{attr}\s*=", path.read_text(), re.MULTILINE), (
        f"{logical_id}: {path.relative_to(ROOT)} defines no {attr}"
    )


@pytest.mark.parametrize("logical_id", sorted(DESIGN_FUNCTIONS))
def test_sample_event_per_function(logical_id: str) -> None:
    module = DESIGN_FUNCTIONS[logical_id][0].rsplit(".", 2)[-2]
    sample = EVENTS / "functions" / f"{module}.json"
    assert sample.is_file(), f"no sample input {sample.relative_to(ROOT)} for sam local invoke"
    json.loads(sample.read_text(encoding="utf-8"))


@pytest.mark.parametrize("logical_id", sorted(DESIGN_FUNCTIONS))
def test_sample_event_is_accepted_by_the_handler_input_model(logical_id: str) -> None:
    """The sample is what the handler validates its event with (the spec, or an *Input model)."""
    handler_module = DESIGN_FUNCTIONS[logical_id][0].rpartition(".")[0]
    module = handler_module.rpartition(".")[2]
    sample = json.loads((EVENTS / "functions" / f"{module}.json").read_text(encoding="utf-8"))
    source = (ROOT / "functions" / (handler_module.replace(".", "/") + ".py")).read_text()
    model_name = re.search(r"\b(\w+Input)\.model_validate\(", source)
    if model_name is None:
        spec = pytest.importorskip("envbuild_lambda.spec")
        spec.parse_spec(sample)
        return
    origin = re.search(
        rf"^from ([\w.]+) import [^\n]*\b{model_name.group(1)}\b", source, re.MULTILINE
    )
    inputs = pytest.importorskip(origin.group(1) if origin else "envbuild_lambda.handlers.inputs")
    getattr(inputs, model_name.group(1)).model_validate(sample)


def test_every_function_logs_json_to_its_own_log_group_with_retention(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    seen: set[str] = set()
    for logical_id, fn in functions(template).items():
        logging_config = effective(template, fn, "LoggingConfig")
        assert logging_config["LogFormat"] == "JSON", logical_id
        group = logging_config["LogGroup"]["Ref"]
        assert group not in seen, f"{logical_id} shares log group {group}"
        seen.add(group)
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert "RetentionInDays" in resources[group]["Properties"], group


def test_function_environment(template: dict[str, Any]) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "envbuild"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "envbuild"
    assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    # The template's defaults are the functions' own defaults (one source of truth for a
    # deployment that overrides nothing).
    params = template["Parameters"]

    def deployed(name: str) -> str:
        value = env[name]
        return str(params[value["Ref"]]["Default"]) if isinstance(value, dict) else str(value)

    poll_names = [name for name in env if "_POLL_" in name]
    assert len(poll_names) == 9, poll_names
    assert Settings.from_env({name: deployed(name) for name in poll_names}) == Settings.from_env({})


# --- state machine ----------------------------------------------------------------------------
MACHINES = sorted(MACHINE_FUNCTIONS)


@pytest.mark.parametrize("machine", MACHINES)
def test_definition_substitutions_are_the_function_arns(
    template: dict[str, Any], machine: str
) -> None:
    subs = state_machine(template, machine)["DefinitionSubstitutions"]
    expected = {
        key: {"Fn::GetAtt": [lid, "Arn"]} for lid, (_h, key) in MACHINE_FUNCTIONS[machine].items()
    }
    if machine == "BuildEnvironmentStateMachine":  # the rollback runs the teardown workflow
        expected["TeardownEnvironmentStateMachineArn"] = {"Ref": "TeardownEnvironmentStateMachine"}
        expected["StatesStartExecutionSync"] = {
            "Fn::Sub": "arn:${AWS::Partition}:states:::states:startExecution.sync:2"
        }
        # Environment Ready / Environment Build Failed (issue 6): native putEvents on one bus.
        expected["EventsPutEvents"] = {"Fn::Sub": "arn:${AWS::Partition}:states:::events:putEvents"}
        expected["EventBusName"] = {"Ref": "EventBusName"}
        # the build releases its lock with a direct DynamoDB integration
        expected["DynamoDbDeleteItem"] = {
            "Fn::Sub": "arn:${AWS::Partition}:states:::dynamodb:deleteItem"
        }
        expected["EnvironmentLocksTableName"] = {"Ref": "EnvironmentLocksTable"}
        # ... and names its rollback or prune in the lock item before starting it
        expected["DynamoDbUpdateItem"] = {
            "Fn::Sub": "arn:${AWS::Partition}:states:::dynamodb:updateItem"
        }
        expected["TeardownExecutionArnPrefix"] = {
            "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution"
            ":${AWS::StackName}-TeardownEnvironmentStateMachine"
        }
    assert subs == expected


def asl_path(template: dict[str, Any], machine: str = "BuildEnvironmentStateMachine") -> Path:
    return ROOT / state_machine(template, machine)["DefinitionUri"]


@pytest.mark.parametrize("machine", MACHINES)
def test_definition_substitutions_match_asl_placeholders(
    template: dict[str, Any], machine: str
) -> None:
    path = asl_path(template, machine)
    if not path.is_file():
        pytest.skip(f"{path.relative_to(ROOT)} does not exist yet")
    text = path.read_text(encoding="utf-8")
    json.loads(text)
    placeholders = set(re.findall(r"\$\{([^}]+)\}", text))
    assert placeholders == set(state_machine(template, machine)["DefinitionSubstitutions"])


@pytest.mark.parametrize("machine", MACHINES)
def test_state_machine_logging_and_tracing(template: dict[str, Any], machine: str) -> None:
    props = state_machine(template, machine)
    assert props["Type"] == "STANDARD"
    assert props["Logging"]["IncludeExecutionData"] is False
    assert props["Tracing"] == {"Enabled": True}
    (destination,) = props["Logging"]["Destinations"]
    group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert "RetentionInDays" in template["Resources"][group]["Properties"]


@pytest.mark.parametrize("machine", MACHINES)
def test_state_machine_may_invoke_only_its_functions(
    template: dict[str, Any], machine: str
) -> None:
    invoked = set()
    started = set()
    for policy in state_machine(template, machine)["Policies"]:
        if "LambdaInvokePolicy" in policy:
            invoked.add(policy["LambdaInvokePolicy"]["FunctionName"]["Ref"])
            continue
        if "StepFunctionsExecutionPolicy" in policy:
            started.add(policy["StepFunctionsExecutionPolicy"]["StateMachineName"]["Fn::GetAtt"][0])
            continue
        for statement in policy["Statement"]:
            actions = as_list(statement["Action"])
            assert not any(a.startswith("lambda:") for a in actions), statement
            if statement.get("Sid", "").startswith("Rollback"):
                assert all(a.startswith(("states:", "events:")) for a in actions), statement
                continue
            if statement.get("Sid") == "AnnounceOnEventBus":  # the build's events, one bus
                assert actions == ["events:PutEvents"]
                assert statement["Resource"] == {
                    "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}"
                    ":event-bus/${EventBusName}"
                }
                continue
            if statement.get("Sid") == "ReleaseEnvironmentLock":
                assert machine == "BuildEnvironmentStateMachine"
                # release it; name the rollback or prune that may run under it
                assert actions == ["dynamodb:DeleteItem", "dynamodb:UpdateItem"]
                assert statement["Resource"] == {"Fn::GetAtt": ["EnvironmentLocksTable", "Arn"]}
                continue
            assert all(a.startswith("logs:") for a in actions), statement
    assert invoked == set(MACHINE_FUNCTIONS[machine])
    # Only the build may start another workflow: the teardown, for its rollback.
    expected = (
        {"TeardownEnvironmentStateMachine"} if machine == "BuildEnvironmentStateMachine" else set()
    )
    assert started == expected


# --- EventBridge ------------------------------------------------------------------------------
def _matches(pattern: Any, event: Any) -> bool:
    """EventBridge matching for the subset we use: nested objects and arrays of exact strings."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(
            key in event and _matches(sub, event[key]) for key, sub in pattern.items()
        )
    assert isinstance(pattern, list), pattern
    assert all(isinstance(p, str) for p in pattern), "only exact-string arrays are implemented"
    values = event if isinstance(event, list) else [event]
    return any(v in pattern for v in values)


def event_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    ours = _matches(pattern, event)
    try:
        from moto.events.models import EventPattern
    except ImportError:  # pragma: no cover - moto is in requirements-dev.txt
        return ours
    theirs = bool(EventPattern.load(json.dumps(pattern)).matches_event(event))
    assert ours == theirs, "our matcher and moto's disagree"
    return ours


@pytest.fixture(scope="module")
def rule(template: dict[str, Any]) -> dict[str, Any]:
    rules = [
        ev["Properties"]
        for ev in state_machine(template)["Events"].values()
        if ev["Type"] == "EventBridgeRule"
    ]
    assert len(rules) == 1
    return rules[0]


@pytest.fixture(scope="module")
def sample_event() -> dict[str, Any]:
    event = json.loads((EVENTS / "eventbridge-build-requested.json").read_text(encoding="utf-8"))
    assert isinstance(event, dict)
    return event


def test_rule_matches_sample_event(rule: dict[str, Any], sample_event: dict[str, Any]) -> None:
    assert rule["Pattern"] == {
        "source": ["envbuild"],
        "detail-type": ["Environment Build Requested"],
    }
    assert event_matches(rule["Pattern"], sample_event)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("detail-type", "Environment Teardown Requested"),
        ("detail-type", "environment build requested"),
        ("source", "aws.ecs"),
        ("source", "envbuild.other"),
    ],
)
def test_rule_ignores_other_events(
    rule: dict[str, Any], sample_event: dict[str, Any], field: str, value: str
) -> None:
    other = copy.deepcopy(sample_event)
    other[field] = value
    assert not event_matches(rule["Pattern"], other)


def test_rule_passes_the_spec_with_retry_and_dead_letter_queue(
    template: dict[str, Any], rule: dict[str, Any], sample_event: dict[str, Any]
) -> None:
    assert rule["InputPath"] == "$.detail"
    workshop = json.loads((EVENTS / "workshop.json").read_text(encoding="utf-8"))
    assert sample_event["detail"] == workshop
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert rule["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 60
    dlq = rule["DeadLetterConfig"]
    if "Arn" in dlq:
        queue = template["Resources"][dlq["Arn"]["Fn::GetAtt"][0]]
        assert queue["Type"] == "AWS::SQS::Queue"
        assert queue["Properties"].get("SqsManagedSseEnabled") or queue["Properties"].get(
            "KmsMasterKeyId"
        )
    else:
        assert dlq["Type"] == "SQS"


def test_put_events_sample_matches_the_rule(rule: dict[str, Any]) -> None:
    body = json.loads((EVENTS / "put-events-build-requested.json").read_text(encoding="utf-8"))
    (entry,) = body["Entries"]
    event = {"source": entry["Source"], "detail-type": entry["DetailType"]}
    assert event_matches(rule["Pattern"], event)
    workshop = json.loads((EVENTS / "workshop.json").read_text(encoding="utf-8"))
    assert json.loads(entry["Detail"]) == workshop


# --- IAM --------------------------------------------------------------------------------------
def test_pass_role_always_restricted_to_ecs_tasks(template: dict[str, Any]) -> None:
    found = 0
    for logical_id, fn in functions(template).items():
        for statement in statements(fn):
            actions = as_list(statement["Action"])
            assert "*" not in actions, logical_id
            assert "iam:*" not in actions, logical_id
            if "iam:PassRole" not in actions:
                continue
            found += 1
            assert statement["Resource"] != "*", logical_id
            condition = statement["Condition"]["StringEquals"]
            assert condition["iam:PassedToService"] == "ecs-tasks.amazonaws.com", logical_id
    assert found >= 1


def test_validate_spec_makes_no_aws_calls(template: dict[str, Any]) -> None:
    assert not functions(template)["ValidateSpecFunction"]["Properties"].get("Policies")


# --- no literal account / region / partition --------------------------------------------------
ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")
REGION = re.compile(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov)-[a-z]+-\d\b")
PARTITION = re.compile(r"arn:aws(?:-cn|-us-gov|-iso[a-z-]*)?:")


def literal_violations(text: str) -> list[str]:
    found = []
    for pattern in (ACCOUNT_ID, REGION, PARTITION):
        found += [m.group(0) for m in pattern.finditer(text)]
    return found


def test_no_literal_account_region_or_partition_in_template() -> None:
    assert literal_violations(TEMPLATE.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("machine", MACHINES)
def test_no_literal_account_region_or_partition_in_asl(
    template: dict[str, Any], machine: str
) -> None:
    path = asl_path(template, machine)
    if not path.is_file():
        pytest.skip(f"{path.relative_to(ROOT)} does not exist yet")
    assert literal_violations(path.read_text(encoding="utf-8")) == []


def test_literal_checks_catch_violations() -> None:
    assert literal_violations("arn:aws:iam::123456789012:role/x in eu-west-1") == [
        "123456789012",
        "eu-west-1",
        "arn:aws:",
    ]
    assert literal_violations("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/x") == []


# --- the workshop spec ------------------------------------------------------------------------
def test_workshop_spec_is_the_workshop() -> None:
    spec = json.loads((EVENTS / "workshop.json").read_text(encoding="utf-8"))
    assert spec["environment"] == "workshop"
    assert spec["namespace"] == {
        "name": "workshop.local",
        "vpcId": "${VPC_ID}",
        "description": "Private DNS namespace for ECS workshop",
    }
    assert spec["cluster"] == "${CLUSTER_NAME}"
    assert spec["network"] == {
        "subnets": ["${PRIVATE_SUBNET_1}", "${PRIVATE_SUBNET_2}"],
        "securityGroups": ["${ECS_SG}"],
        "assignPublicIp": "DISABLED",
    }
    services = {s["name"]: s for s in spec["services"]}
    assert list(services) == ["web", "api", "db"]
    expected = {
        "web": ("nginx:latest", 80, 2, {"API_ENDPOINT": "http://api.workshop.local"}),
        "api": ("httpd:latest", 80, 2, {"DB_ENDPOINT": "db.workshop.local"}),
        "db": ("redis:alpine", 6379, 1, {}),
    }
    for name, (image, port, count, env) in expected.items():
        s = services[name]
        assert (s["image"], s["port"], s["desiredCount"]) == (image, port, count), name
        assert s.get("environment", {}) == env, name
        assert (s["cpu"], s["memory"], s["dnsTtl"]) == ("256", "512", 60), name


# --- teardown ---------------------------------------------------------------------------------
TEARDOWN = "TeardownEnvironmentStateMachine"


@pytest.fixture(scope="module")
def teardown_asl(template: dict[str, Any]) -> dict[str, Any]:
    asl = json.loads(asl_path(template, TEARDOWN).read_text(encoding="utf-8"))
    assert isinstance(asl, dict)
    return asl


def test_teardown_tasks_have_timeouts_retries_with_jitter_and_a_catch(
    teardown_asl: dict[str, Any],
) -> None:
    states = teardown_asl["States"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert len(tasks) >= 10
    for name, task in tasks.items():
        assert task["TimeoutSeconds"] > 0, name
        retried = {error for retry in task["Retry"] for error in retry["ErrorEquals"]}
        assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "AwsThrottled"} <= (
            retried
        ), name
        for retry in task["Retry"]:
            assert retry["JitterStrategy"] == "FULL", name
            assert retry["MaxDelaySeconds"] > 0, name
        (catch,) = task["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"], name
        if name == "Release Lock":  # a lock not released expires; the teardown itself succeeded
            assert catch["Next"] == "Teardown Succeeded"
            continue
        # Acquire Lock: the input may be no object; Plan Teardown Only (planOnly: true) holds no
        # lock. Either way the error replaces the state and the execution fails with it.
        if name in ("Acquire Lock", "Plan Teardown Only"):
            assert catch["ResultPath"] == "$"
            refused = states[catch["Next"]]
            assert (refused["Type"], refused["ErrorPath"], refused["CausePath"]) == (
                "Fail",
                "$.Error",
                "$.Cause",
            )
            continue
        failed = ends_in_fail(states, catch["Next"])  # after releasing the lock, if held
        assert (failed["Type"], failed["ErrorPath"], failed["CausePath"]) == (
            "Fail",
            "$.error.Error",
            "$.error.Cause",
        ), name


def ends_in_fail(states: dict[str, Any], name: str) -> dict[str, Any]:
    """Follow a failure path (lock release Choice/Task, Pass) to the Fail state it ends in."""
    for _ in range(5):
        state = states[name]
        if state["Type"] == "Fail":
            return dict(state)
        name = state["Default"] if state["Type"] == "Choice" else state["Next"]
    raise AssertionError(f"{name}: no Fail state within 5 steps")


def test_teardown_choices_and_bounded_loops(teardown_asl: dict[str, Any]) -> None:
    states = teardown_asl["States"]
    for name, state in states.items():
        if state["Type"] == "Choice":
            assert name.endswith("?"), name
            assert state["Default"] in states, name
        if state["Type"] == "Wait":
            assert state["SecondsPath"].endswith(".poll.waitSeconds"), name
    loops = [s for s in states.values() if s["Type"] == "Wait"]
    assert len(loops) == 4
    for wait in loops:  # Wait -> Check -> Choice with a bound that ends in a named Fail
        choice = states[states[wait["Next"]]["Next"]]
        bounds = [c for c in choice["Choices"] if "NumericGreaterThanEqualsPath" in c]
        assert len(bounds) == 1
        timed_out = states[bounds[0]["Next"]]  # names the error, then releases the lock and fails
        assert timed_out["Type"] == "Pass"
        assert timed_out["Parameters"]["Error"]
        assert timed_out["Parameters"]["Cause.$"].endswith(".message")
        assert ends_in_fail(states, timed_out["Next"])["ErrorPath"] == "$.error.Error"


def test_every_teardown_input_takes_the_lock_then_is_planned_or_checked(
    teardown_asl: dict[str, Any],
) -> None:
    """No input that can remove anything skips the lock (a createdBy or a plan once did) or the
    record check. The one way past the lock is planOnly: true (`envbuild teardown --plan`), whose
    path reads only: Plan Teardown Only, then the end (or Teardown Refused)."""
    states = teardown_asl["States"]
    assert teardown_asl["StartAt"] == "Plan Only?"
    choice = states["Plan Only?"]
    assert choice["Default"] == "Acquire Lock"
    (only,) = choice["Choices"]
    assert only == {
        "And": [
            {"Variable": "$.planOnly", "IsPresent": True},
            {"Variable": "$.planOnly", "BooleanEquals": True},
        ],
        "Next": "Plan Teardown Only",
    }
    plan_only = states["Plan Teardown Only"]
    assert plan_only["Resource"] == states["Plan Teardown"]["Resource"]
    assert states[plan_only["Next"]]["Type"] == "Succeed"
    assert [c["Next"] for c in plan_only["Catch"]] == ["Teardown Refused"]
    assert states["Acquire Lock"]["Next"] == "Plan Teardown"
    assert states["Acquire Lock"]["Parameters"] == {
        "teardown.$": "$",
        "executionArn.$": "$$.Execution.Id",
        "executionName.$": "$$.Execution.Name",
    }
    assert states["Plan Teardown"]["Next"] == "Scale ECS Services To Zero"
    assert not [
        name
        for name, s in states.items()
        if s["Type"] == "Choice" and '"$.plan' in json.dumps(s) and name != "Plan Only?"
    ]


def teardown_rule(template: dict[str, Any]) -> dict[str, Any]:
    (rule_props,) = [
        ev["Properties"]
        for ev in state_machine(template, TEARDOWN)["Events"].values()
        if ev["Type"] == "EventBridgeRule"
    ]
    assert isinstance(rule_props, dict)
    return rule_props


def test_teardown_rule_matches_its_samples_only(template: dict[str, Any]) -> None:
    rule_props = teardown_rule(template)
    assert rule_props["Pattern"] == {
        "source": ["envbuild"],
        "detail-type": ["Environment Teardown Requested"],
    }
    assert rule_props["InputPath"] == "$.detail"
    assert rule_props["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    queue = template["Resources"][rule_props["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]]
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    sample = json.loads((EVENTS / "teardown-requested.json").read_text(encoding="utf-8"))
    assert event_matches(rule_props["Pattern"], sample)
    build_sample = json.loads(
        (EVENTS / "eventbridge-build-requested.json").read_text(encoding="utf-8")
    )
    assert not event_matches(rule_props["Pattern"], build_sample)
    body = json.loads((EVENTS / "put-events-teardown-requested.json").read_text("utf-8"))
    (entry,) = body["Entries"]
    assert event_matches(
        rule_props["Pattern"], {"source": entry["Source"], "detail-type": entry["DetailType"]}
    )
    workshop = json.loads((EVENTS / "workshop.json").read_text(encoding="utf-8"))
    for detail in (sample["detail"], json.loads(entry["Detail"])):
        assert {k: v for k, v in detail.items() if k in workshop} == workshop


def test_teardown_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["TeardownEnvironmentStateMachineArn"]["Value"] == {"Ref": TEARDOWN}


def test_every_unscoped_teardown_statement_says_why(template: dict[str, Any]) -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    block = text[text.index("  # ---- Teardown ----") :]
    lines = block.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == 'Resource: "*"':
            statement_start = max(i for i in range(index) if lines[i].lstrip().startswith("- Sid:"))
            assert lines[statement_start - 1].lstrip().startswith("#"), lines[statement_start]


@pytest.mark.parametrize(
    ("variable", "table"),
    [
        ("RECORD_TABLE_NAME", "EnvironmentRecordsTable"),
        ("LOCK_TABLE_NAME", "EnvironmentLocksTable"),
    ],
)
def test_a_function_that_may_use_a_table_is_told_its_name_and_only_then(
    template: dict[str, Any], variable: str, table: str
) -> None:
    """The emulator runs every handler in one process, so an environment variable set for one
    function is seen by all: a function missing its own would pass there and fail on AWS. The
    IAM proof ties each recorded call to a grant; this ties each grant to the variable."""
    for logical_id, fn in functions(template).items():
        props = fn["Properties"]
        told = variable in (props.get("Environment") or {}).get("Variables", {})
        granted = any(
            statement.get("Resource") == {"Fn::GetAtt": [table, "Arn"]}
            for policy in props.get("Policies", [])
            if isinstance(policy, dict)
            for statement in policy.get("Statement", [])
        )
        assert told == granted, f"{logical_id}: {variable} set: {told}, {table} granted: {granted}"
