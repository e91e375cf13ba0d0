"""The floors of the architecture, checked by import-linter with the contracts in pyproject.toml.

The package follows them; a copy of it with one planted forbidden import breaks the named contract, so the check
is known to bite: a back-import from a low floor to a high one, a Dagster internal outside the adapters, and
Dagster's test utilities in product code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ml_platform_tests.helpers import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
LAYERS = "The flow runs one way: each floor imports only from the floors beneath it"
INTERNALS = "Only the adapters import Dagster's internals"
TEST_UTILITIES = "Product code imports nothing from Dagster's test utilities"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports run on the package and pyproject.toml at root (the package imported from there)."""
    environment = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, env=environment,
                          capture_output=True, text=True, timeout=300)


def planted(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package and its contracts in which one module gains one import line."""
    root = tmp_path / "copy"
    shutil.copytree(REPO_ROOT / "ml_platform", root / "ml_platform",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # planted by test_architecture\n",
                    encoding="utf-8")
    return root


def test_the_package_keeps_every_contract():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in (LAYERS, INTERNALS, TEST_UTILITIES):
        assert f"{contract} KEPT" in result.stdout, result.stdout


@pytest.mark.parametrize("module, line, contract, chain", [
    ("ml_platform.specs.models", "import ml_platform.cli", LAYERS,
     "ml_platform.specs.models -> ml_platform.cli"),
    ("ml_platform.chain.runner", "from dagster._time import get_current_datetime", INTERNALS,
     "ml_platform.chain.runner -> dagster._time"),
    ("ml_platform.adapters.clock", "from dagster._core.test_utils import freeze_time", TEST_UTILITIES,
     "ml_platform.adapters.clock -> dagster._core.test_utils"),
])
def test_a_planted_import_breaks_the_contract_it_crosses(tmp_path, module, line, contract, chain):
    result = lint_imports(planted(tmp_path, module, line))
    print(result.stdout)  # the failure text, as a developer sees it
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout, result.stdout
    assert chain in result.stdout, result.stdout
    kept = {LAYERS, INTERNALS, TEST_UTILITIES} - {contract}
    assert all(f"{other} KEPT" in result.stdout for other in kept), result.stdout
