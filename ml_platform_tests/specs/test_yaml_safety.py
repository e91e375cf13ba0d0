"""Spec files are loaded safely: a YAML tag that would run code is refused, and nothing runs."""

from __future__ import annotations

import pytest

from ml_platform.features.library import load_catalog
from ml_platform.specs.errors import SpecErrors


def test_yaml_tags_that_would_run_code_are_refused(make_project):
    project = make_project()
    path = project.specs_dir / "sources" / "evil.yaml"
    path.write_text("!!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(SpecErrors, match="evil.yaml"):
        load_catalog(project.specs_dir, project.root)
    assert not (project.root / "pwned").exists()
