"""Sample outputs for the README, from real runs on the embedded emulator (`make docs`).

Each sample is what a user sees for one command: the command line, then the CLI's output. What
differs from run to run (ids, execution names, times) is masked when the tests compare a sample
with a fresh run (``mask``), so a sample is stale only when the output's shape or words change.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Callable
from contextlib import chdir
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORKSHOP = REPO / "events" / "workshop.json"

VOLATILE = [
    (re.compile(r"\d{8}T\d{6}-[0-9a-f]{6}"), "YYYYMMDDTHHMMSS-xxxxxx"),
    (re.compile(r"\b(ns|srv|vpc|subnet|sg)-[0-9a-z]{8,20}\b"), r"\1-…"),
    (re.compile(r"hosted zone [0-9A-Z]+"), "hosted zone Z…"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "uuid"),
    (re.compile(r"^ +\d+\.\ds  ", re.M), "  T  "),
    (re.compile(r"\(\d+ checks?\)"), "(N checks)"),
    (re.compile(r"\b10\.\d+\.\d+\.\d+\b"), "10.x.x.x"),  # task IPs: tasks start concurrently
]


def mask(text: str) -> str:
    """The text with what varies from run to run masked: ids, names, times; the progress lines
    sorted and the intermediate poll lines left out (parallel branches interleave differently)."""
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    lines = text.splitlines()
    progress = sorted(
        re.split(r" \(|: ", line, maxsplit=1)[0]  # the mark and the state
        for line in lines
        if line.startswith("  T  ") and "  T  …" not in line
    )
    rest = [line for line in lines if not line.startswith("  T  ")]
    return "\n".join(rest + progress)


def changed_spec(text: str) -> str:
    """The README's edit of the workshop spec: web on nginx:1.27 with 3 tasks."""
    text = text.replace('"nginx:latest"', '"nginx:1.27"')
    head, tail = text.split('"name": "web"', 1)
    return head + '"name": "web"' + tail.replace('"desiredCount": 2', '"desiredCount": 3', 1)


def _command(where: Any, argv: list[str], document: dict[str, Any], machine: str, verb: str) -> str:
    from envbuild.cli import finish, parser, start_and_follow

    args = parser().parse_args(argv)
    out = io.StringIO()
    out.write(f"$ .venv/bin/envbuild {' '.join(argv[:-2])}\n")
    described = start_and_follow(
        where.sfn, where.state_machine(machine), document, args, out, where.clock, verb
    )
    finish(where.sfn, described, args, out)
    return out.getvalue()


@cache
def samples() -> dict[str, str]:
    """Every sample, from two sessions of the embedded emulator (time scale 0)."""
    from envbuild.cli import (
        STATE_MACHINE_NAME,
        TEARDOWN_STATE_MACHINE_NAME,
        parser,
        target,
        teardown_document,
    )

    found: dict[str, str] = {}
    scale = ["--time-scale", "0"]
    with tempfile.TemporaryDirectory() as tmp, chdir(tmp):
        Path("changed.json").write_text(changed_spec(WORKSHOP.read_text()))
        workshop = "events/workshop.json"
        # a first build, the plan of a change, and a teardown plan
        out = io.StringIO()
        with target(parser().parse_args(["run", str(WORKSHOP), *scale]), out) as where:
            spec = where.load_spec(WORKSHOP)
            changed = where.load_spec(Path("changed.json"))
            first = _command(where, ["run", workshop, *scale], spec, STATE_MACHINE_NAME, "Building")
            found["sample build"] = "$ make run\n" + out.getvalue() + first.split("\n", 1)[1]
            found["sample plan"] = _command(
                where,
                ["plan", "changed.json", *scale],
                {**changed, "plan": True},
                STATE_MACHINE_NAME,
                "Planning",
            )
            args = parser().parse_args(["teardown", "changed.json", "--plan", *scale])
            found["sample teardown plan"] = _command(
                where,
                ["teardown", "changed.json", "--plan", *scale],
                {**teardown_document(changed, args), "planOnly": True},
                TEARDOWN_STATE_MACHINE_NAME,
                "Planning the teardown of",
            )
        # a build whose db tasks cannot start: the failure, and the rollback
        with target(parser().parse_args(["run", str(WORKSHOP), *scale]), io.StringIO()) as where:
            where.emulator.world.faults.tasks_fail_to_start("db-service")
            spec = where.load_spec(WORKSHOP)
            found["sample failed build"] = _command(
                where, ["run", workshop, *scale], spec, STATE_MACHINE_NAME, "Building"
            )
    return found


def render(name: str) -> Callable[[], str]:
    def text() -> str:
        return "```text\n" + samples()[name].rstrip() + "\n```\n"

    return text
