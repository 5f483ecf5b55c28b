"""`make run` as a user runs it: the installed `envbuild` console script in a fresh process, outside
the repository, without pytest's pythonpath (what `make run` executes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "envbuild"


@pytest.mark.skipif(not SCRIPT.exists(), reason="the envbuild console script is not installed")
def test_the_console_script_builds_the_workshop_in_a_fresh_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AWS_ENDPOINT_URL")}
    spec = str(REPO / "events" / "workshop.json")

    done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [str(SCRIPT), "run", spec, "--time-scale", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Environment workshop is ready." in done.stdout
    assert "Traceback" not in done.stderr
    assert (tmp_path / "workshop-resources.env").exists()
