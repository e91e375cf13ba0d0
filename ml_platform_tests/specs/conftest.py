"""Fixtures of the spec tests."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from ml_platform_tests.specs.helpers import errors_of, make_specs


@pytest.fixture
def spec_errors(tmp_path: Path) -> Callable[..., list[str]]:
    """Load the repository's sources and features plus one inline document; return the text of every error."""

    def load_with(text: str, file: str = "test_spec.yaml", **more: str) -> list[str]:
        return errors_of(make_specs(tmp_path / "project", {file: text, **more}))

    return load_with
