"""The built artifacts (`make build`: `sam build`, then compileall) ship precompiled bytecode.

Lambda's file system is read-only outside /tmp, so a package without bytecode is compiled from
source at every cold start. Each function's artifact must hold, for every module of envbuild's
code and of its heaviest dependencies, a ``__pycache__/<module>.cpython-313.pyc`` that the
runtime's Python accepts without reading the source's timestamp (hash-based, unchecked: the zip
does not keep timestamps). Skipped when nothing is built (`make test` builds first).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / ".aws-sam" / "build"
PACKAGES = ("envbuild_lambda", "boto3", "botocore", "pydantic", "aws_lambda_powertools")
#: PEP 552 flags: bit 0 hash-based, bit 1 check_source. Unchecked hash-based = 0b01.
UNCHECKED_HASH = 0b01


def artifacts() -> list[Path]:
    if not BUILD.is_dir():
        return []
    return sorted(p for p in BUILD.iterdir() if (p / "envbuild_lambda" / "__init__.py").is_file())


def missing_bytecode(package: Path) -> list[str]:
    """The package's modules without an unchecked-hash .pyc for this Python (relative paths)."""
    tag = sys.implementation.cache_tag
    missing = []
    for source in sorted(package.rglob("*.py")):
        compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if not compiled.is_file():
            missing.append(f"{source.relative_to(package.parent)} (no {compiled.name})")
            continue
        header = compiled.read_bytes()[:8]
        flags = int.from_bytes(header[4:8], "little")
        if header[:4] != importlib.util.MAGIC_NUMBER or flags != UNCHECKED_HASH:
            missing.append(f"{source.relative_to(package.parent)} (stale or checked .pyc)")
    return missing


pytestmark = pytest.mark.skipif(
    not artifacts(), reason="no built artifact in .aws-sam/build: run `make build`"
)


def test_the_build_targets_the_python_that_compiles_it() -> None:
    template = (REPO / "template.yaml").read_text()
    assert f"Runtime: python{sys.version_info.major}.{sys.version_info.minor}" in template


@pytest.mark.parametrize("package", PACKAGES)
def test_every_artifact_ships_bytecode_for(package: str) -> None:
    for artifact in artifacts():
        root = artifact / package
        assert root.is_dir(), f"{artifact.name}: {package} is not in the artifact"
        missing = missing_bytecode(root)
        assert not missing, (
            f"{artifact.name}: {len(missing)} modules without bytecode, e.g. {missing[:5]}"
        )
