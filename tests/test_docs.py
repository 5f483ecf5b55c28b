"""The generated documentation: up to date with its sources, and saying what the sources say."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from envbuild import diagram, docgen
from envbuild.spec_reference import SCHEMA, fields
from envbuild.spec_reference import render as spec_reference

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_the_generated_documentation_is_up_to_date() -> None:
    stale = docgen.stale()
    assert not stale, (
        f"stale generated documentation: {', '.join(stale)}. Regenerate it with `make docs` "
        "(python -m envbuild.docgen) and commit the result.\n" + docgen.differences()
    )


def edges(text: str) -> list[tuple[str, str, str]]:
    found = re.findall(r"^\s*(\S+) --> (\S+?)(?:: (.*))?$", text, re.M)
    return [(a, b, label) for a, b, label in found]


@pytest.mark.parametrize("name", sorted(diagram.STATE_MACHINES))
def test_the_diagram_draws_every_state_edge_choice_and_catch(name: str) -> None:
    definition = json.loads(diagram.STATE_MACHINES[name].read_text())
    text = diagram.mermaid(definition)
    drawn = set(edges(text))
    for state_name, state in diagram.all_states(definition).items():
        ident = diagram.node_id(state_name)
        assert re.search(rf'^\s*state "{re.escape(state_name)}( [^"]*)?" as {ident}$', text, re.M)
        for rule in state.get("Choices", []):
            assert (ident, diagram.node_id(rule["Next"]), diagram.condition(rule)) in drawn
        if "Default" in state:
            assert (ident, diagram.node_id(state["Default"]), "otherwise") in drawn
        if "Next" in state:
            assert (ident, diagram.node_id(state["Next"]), "") in drawn
        for catcher in state.get("Catch", []):
            label = "✗ any error" if catcher["ErrorEquals"] == ["States.ALL"] else "✗ "
            assert any(
                e[:2] == (ident, diagram.node_id(catcher["Next"])) and e[2].startswith(label)
                for e in drawn
            )
        if state.get("Retry"):  # retries are a note, not edges
            assert not any(a == b == ident for a, b, _ in drawn)
    assert "Retries are not drawn." in text


def test_conditions_read_as_words() -> None:
    assert diagram.condition({"Variable": "$.a.status", "StringEquals": "SUCCESS"}) == (
        "status = SUCCESS"
    )
    assert diagram.condition(
        {"Variable": "$.poll.attempt", "NumericGreaterThanEqualsPath": "$.poll.maxAttempts"}
    ) == ("attempt ≥ maxAttempts")
    assert diagram.condition({"Variable": "$.d.ready", "BooleanEquals": True}) == "ready"
    assert diagram.condition(
        {"Or": [{"Variable": "$.a", "IsPresent": True}, {"Variable": "$.b", "IsPresent": False}]}
    ) == ("a present or b absent")


def test_a_changed_state_machine_makes_the_readme_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    definition: dict[str, Any] = json.loads(diagram.STATE_MACHINES["build"].read_text())
    first = definition["StartAt"]
    definition["States"]["Say Hello"] = {"Type": "Pass", "Next": first}
    definition["StartAt"] = "Say Hello"
    changed = tmp_path / "build_environment.asl.json"
    changed.write_text(json.dumps(definition))
    monkeypatch.setitem(diagram.STATE_MACHINES, "build", changed)

    assert docgen.stale() == ["docs/architecture.md (diagram build)"]
    assert 'state "Say Hello" as SayHello' in diagram.mermaid(definition)


def test_colliding_state_ids_are_refused() -> None:
    definition = {
        "StartAt": "A-B",
        "States": {"A-B": {"Type": "Pass", "Next": "A B"}, "A B": {"Type": "Succeed"}},
    }
    with pytest.raises(ValueError, match="same Mermaid id"):
        diagram.mermaid(definition)


def test_the_spec_reference_lists_every_schema_field() -> None:
    schema = json.loads(SCHEMA.read_text())
    text = spec_reference()
    paths = [path for path, _, _ in fields(schema, schema)]
    assert {"environment", "namespace.vpcId", "services[].port", "network.subnets"} <= set(paths)
    for path in paths:
        assert f"| `{path}` |" in text
    assert "| `services[].desiredCount` | integer |  | `1` | ≥ 0; ≤ 1000 |" in text


def troubleshooting_errors() -> set[str]:
    section = (REPO / "docs" / "troubleshooting.md").read_text()
    return set(re.findall(r"`([A-Za-z][A-Za-z.]*(?:\*)?)`", section))


def test_troubleshooting_covers_every_error_a_workflow_can_end_with() -> None:
    from envbuild_lambda import errors

    domain = {
        name
        for name, value in inspect.getmembers(errors, inspect.isclass)
        if issubclass(value, errors.EnvbuildError) and value is not errors.EnvbuildError
    }
    from_asl = set()
    for path in diagram.STATE_MACHINES.values():
        for state in diagram.all_states(json.loads(path.read_text())).values():
            literal = state.get("Error") or (state.get("Parameters") or {}).get("Error")
            if isinstance(literal, str):
                from_asl.add(literal)
    listed = troubleshooting_errors()
    missing = sorted((domain | from_asl | {"States.Timeout"}) - listed)
    assert not missing, f"docs/troubleshooting.md does not explain: {missing}"


def test_no_tracked_file_holds_a_merge_conflict_marker() -> None:
    """A merge once committed README.md with its conflict markers."""
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files"],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    marked = []
    for name in tracked:
        path = REPO / name
        if (
            path.suffix not in (".md", ".py", ".json", ".yaml", ".toml", ".txt")
            or not path.is_file()
        ):
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        if any(line.startswith(("<<<<<<< ", ">>>>>>> ")) for line in lines):
            marked.append(name)
    assert marked == []
