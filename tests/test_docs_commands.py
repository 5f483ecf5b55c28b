"""Every command block of README.md and docs/operate.md, run as a user runs it, in order, against the
emulator: a block either runs (bash -eu, from a copy of the repository root; a served emulator's
URL in $E and its variables exported, as `make emulator` prints them), or says on its first line
``# not run by the docs test: <why>`` (e.g. it needs AWS) and is then only checked: every
`.venv/bin/envbuild` command parses, every `make` target exists, every `sam` subcommand is one."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envbuild.cli import parser

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "docs/operate.md")
BLOCK = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.M | re.S)
NOT_RUN = "# not run by the docs test:"
SAM_COMMANDS = {"validate", "build", "deploy", "delete", "logs", "list", "sync", "local"}


def blocks(document: str) -> list[str]:
    return BLOCK.findall((REPO / document).read_text())


def commands(block: str) -> Iterator[list[str]]:
    """Each command of a block, continuation lines joined, comments and assignments left out."""
    text = re.sub(r"\\\n\s*", " ", block)
    for line in text.splitlines():
        line = line.split(" # ", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        argv = shlex.split(line, comments=True)
        while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
            argv = argv[1:]  # VAR=value before a command
        for redirect in (">", ">>", "<", "|"):  # the command before a redirection or pipe
            argv = argv[: argv.index(redirect)] if redirect in argv else argv
        if argv and argv[0] not in ("export", "source", "E"):
            yield argv


def check(argv: list[str]) -> None:
    program = argv[0]
    if program.endswith("envbuild"):
        assert program == ".venv/bin/envbuild", f"write {program} as .venv/bin/envbuild"
        try:
            parser().parse_args([a for a in argv[1:] if a not in ("[", "]")])
        except SystemExit as error:
            raise AssertionError(f"not a valid envbuild command: {shlex.join(argv)}") from error
    elif program == "make":
        phony = re.search(r"^\.PHONY: (.*)$", (REPO / "Makefile").read_text(), re.M)
        assert phony
        for target in argv[1:]:
            assert target in phony.group(1).split(), f"no make target {target}"
    elif program.endswith("sam"):
        assert program == ".venv/bin/sam", f"write {program} as .venv/bin/sam"
        assert argv[1] in SAM_COMMANDS, shlex.join(argv)
    else:
        assert program in ("aws", "envsubst", "sed", "cat"), f"unexpected command {program}"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_block_either_runs_or_says_why_not_and_parses(document: str) -> None:
    found = blocks(document)
    assert found, document
    for block in found:
        for argv in commands(block):
            check(argv)
        if block.startswith(NOT_RUN):
            assert len(block.splitlines()[0]) > len(NOT_RUN) + 3, "say why it is not run"


def test_the_readme_fits() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


@pytest.fixture(scope="module")
def served() -> Iterator[Any]:
    from envbuild_emulator.emulator import Emulator

    with Emulator(port=0, time_scale=0.0) as emulator:
        yield emulator


def mirror(tmp: Path) -> Path:
    """The repository root as a user's working directory: its files linked, outputs kept apart."""
    for entry in REPO.iterdir():
        if entry.name not in (".git",) and not entry.name.endswith("-resources.env"):
            (tmp / entry.name).symlink_to(entry)
    return tmp


def test_the_command_blocks_run_against_the_emulator(served: Any, tmp_path: Path) -> None:
    # `make run` in the copy must not reinstall the venv from there (its scripts would then point
    # into the copy): the venv must be up to date with the pinned requirements first.
    stamp = REPO / ".venv" / ".installed"
    newest = max(
        (REPO / name).stat().st_mtime for name in ("requirements-dev.txt", "pyproject.toml")
    )
    if not stamp.exists() or stamp.stat().st_mtime < newest:
        pytest.fail(".venv is older than requirements-dev.txt or pyproject.toml: run `make venv`")
    cwd = mirror(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AWS_ENDPOINT_URL")},
        **served.prerequisites,
        "E": str(served.endpoint_url),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": served.region,
    }
    ran = 0
    for document in DOCUMENTS:
        for block in blocks(document):
            if block.startswith(NOT_RUN):
                continue
            done = subprocess.run(  # noqa: S603 - the documentation's own commands
                ["bash", "-eu", "-o", "pipefail", "-c", block],  # noqa: S607
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, f"{document}:\n{block}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr, done.stderr
            ran += 1
    assert ran >= 6
