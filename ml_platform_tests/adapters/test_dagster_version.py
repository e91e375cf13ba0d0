"""The adapters reach into Dagster's internals as Dagster 1.13.27 has them: another version must re-check them."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster

from ml_platform import adapters

WRITTEN_FOR = "1.13.27"
ADAPTERS = Path(adapters.__file__).parent


def test_dagster_is_the_version_the_adapters_were_written_for():
    modules = sorted(path.stem for path in ADAPTERS.glob("*.py") if path.stem != "__init__")
    assert dagster.__version__ == WRITTEN_FOR, (
        f"Dagster {dagster.__version__} is installed, but ml_platform/adapters/ was written against Dagster "
        f"{WRITTEN_FOR}: re-check every adapter ({', '.join(modules)}) against the new version (each module's "
        f"docstring lists the internals it uses), run their tests, then update WRITTEN_FOR here and in each docstring")


def test_every_adapter_names_the_version_it_was_written_for():
    for path in ADAPTERS.glob("*.py"):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert docstring and f"Dagster {WRITTEN_FOR}" in docstring, path.name
