"""Documentation generated from the sources (the ASL, the JSON Schema), checked for staleness.

The parts: the workflow diagrams in docs/architecture.md (from the ASL), docs/spec-reference.md
(from the JSON Schema) and the README's sample outputs (from real runs on the embedded emulator,
envbuild/samples.py; compared with ids and times masked). A generated part is either a whole file
or a section of a file between two markers:

    <!-- generated: NAME (make docs) -->
    ...
    <!-- end generated: NAME -->

`python -m envbuild.docgen` rewrites every generated part (`make docs`); `--check` only reports
which are stale (the tests run it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIX = "make docs"  # = python -m envbuild.docgen
ARCHITECTURE = REPO / "docs" / "architecture.md"


@dataclass(frozen=True)
class Part:
    path: Path
    section: str | None  # None: the whole file
    render: Callable[[], str]
    #: Compared with ids, names and times masked (a sample output of a real run).
    volatile: bool = False


def begin(name: str) -> str:
    return f"<!-- generated: {name} ({FIX}) -->"


def end(name: str) -> str:
    return f"<!-- end generated: {name} -->"


def replace_section(text: str, name: str, body: str, path: Path) -> str:
    pattern = re.compile(re.escape(begin(name)) + r"\n.*?" + re.escape(end(name)), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path}: no section {begin(name)} … {end(name)}")
    return pattern.sub(lambda _: f"{begin(name)}\n{body.rstrip()}\n{end(name)}", text, count=1)


def wanted(part: Part) -> str:
    body = part.render()
    if part.section is None:
        return body
    return replace_section(part.path.read_text(), part.section, body, part.path)


def parts() -> list[Part]:
    from envbuild.diagram import STATE_MACHINES, mermaid_section
    from envbuild.samples import render as sample
    from envbuild.spec_reference import render as spec_reference

    found = [
        Part(ARCHITECTURE, f"diagram {name}", partial(mermaid_section, path))
        for name, path in STATE_MACHINES.items()
    ]
    found.append(Part(REPO / "docs" / "spec-reference.md", None, spec_reference))
    found += [
        Part(REPO / path, name, sample(name), volatile=True)
        for path, name in (
            ("README.md", "sample build"),
            ("README.md", "sample plan"),
            ("docs/operate.md", "sample failed build"),
            ("docs/operate.md", "sample teardown plan"),
        )
    ]
    return found


def stale() -> list[str]:
    """The generated parts that differ from what the sources give now."""
    from envbuild.samples import mask

    out = []
    for part in parts():
        current = part.path.read_text() if part.path.exists() else ""
        fresh = wanted(part)
        if part.volatile:
            current, fresh = mask(current), mask(fresh)
        if current != fresh:
            where = f"{part.path.relative_to(REPO)}" + (
                f" ({part.section})" if part.section else ""
            )
            out.append(where)
    return out


def differences() -> str:
    """What differs in each stale part (masked for a sample): a unified diff, for the test's
    message."""
    import difflib

    from envbuild.samples import mask

    out = []
    for part in parts():
        current = part.path.read_text() if part.path.exists() else ""
        fresh = wanted(part)
        if part.volatile:
            current, fresh = mask(current), mask(fresh)
        if current != fresh:
            out += difflib.unified_diff(
                current.splitlines(keepends=True),
                fresh.splitlines(keepends=True),
                str(part.path.relative_to(REPO)),
                "fresh",
                n=1,
            )
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m envbuild.docgen", description="Regenerate the generated documentation."
    )
    parser.add_argument("--check", action="store_true", help="only report stale parts (exit 1)")
    if parser.parse_args(argv).check:
        old = stale()
        for where in old:
            sys.stderr.write(f"stale: {where}; regenerate with `{FIX}`\n")
        return 1 if old else 0
    for part in parts():
        text = wanted(part)
        if not part.path.exists() or part.path.read_text() != text:
            part.path.write_text(text)
            sys.stdout.write(f"wrote {part.path.relative_to(REPO)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
