"""Loading the definitions (what the Dagster code server, every run process the daemon launches, and the
`ml-platform` command do first) imports no modelling library: scikit-learn alone took 1.2 s of the 3 s it took to
load them. The libraries load when a step trains, evaluates or scores.

A copy of the package with one planted top-level import shows that the check bites.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ml_platform_tests.helpers import REPO_ROOT

HEAVY = ("sklearn", "lightgbm", "matplotlib", "optuna")
SCRIPT = textwrap.dedent(f"""
    import json, sys
    import ml_platform.definitions, ml_platform.cli
    print(json.dumps(sorted(name for name in {HEAVY!r} if name in sys.modules)))
""")


def loaded_by_the_definitions(root: Path) -> list[str]:
    """The modelling libraries in sys.modules after importing the definitions and the CLI of the package at root."""
    completed = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(root)}, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_loading_the_definitions_imports_no_modelling_library():
    assert loaded_by_the_definitions(REPO_ROOT) == []


@pytest.mark.parametrize("module, line, library", [
    ("ml_platform.evaluation.task_metrics", "from sklearn.metrics import roc_auc_score", "sklearn"),
    ("ml_platform.training.algorithms", "import lightgbm", "lightgbm"),
])
def test_a_planted_top_level_import_is_caught(tmp_path, module, line, library):
    root = tmp_path / "copy"
    shutil.copytree(REPO_ROOT / "ml_platform", root / "ml_platform", ignore=shutil.ignore_patterns("__pycache__"))
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # planted by test_import_cost\n",
                    encoding="utf-8")
    assert library in loaded_by_the_definitions(root)
