"""Read every YAML file under the specs folder into typed specs, or raise every error found at once."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from ml_platform.specs.catalog import Catalog
from ml_platform.specs.checks import check_catalog
from ml_platform.specs.errors import SpecError, SpecErrors, display_path, from_validation_error, unknown_name
from ml_platform.specs.models import KINDS

SPEC_SUFFIXES = (".yaml", ".yml")


def spec_files(specs_dir: Path) -> list[Path]:
    """Every spec file under the folder, in a stable order."""
    return sorted(path for path in specs_dir.rglob("*") if path.suffix in SPEC_SUFFIXES and path.is_file())


def _parse_file(path: Path, shown: str) -> tuple[object | None, list[SpecError]]:
    """One file's document as a typed spec, or the errors that stop it."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        return None, [SpecError(shown, "", f"YAML syntax error{where}: {problem}")]
    except UnicodeDecodeError as error:
        return None, [SpecError(shown, "", f"not UTF-8 text: {error.reason}")]
    if not isinstance(raw, dict):
        given = "an empty file" if raw is None else f"a {type(raw).__name__}"
        return None, [SpecError(shown, "", f"a spec file must hold one mapping with a 'kind' field, found {given}")]
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    kind = raw.get("kind")
    if kind is None:
        return None, [SpecError(shown, "kind", f"missing required field (allowed: {', '.join(KINDS)})", None, name)]
    if kind not in KINDS:
        return None, [SpecError(shown, "kind", unknown_name("kind", str(kind), KINDS), None, name)]
    model = KINDS[kind]
    try:
        return model.model_validate(raw), []
    except ValidationError as error:
        return None, from_validation_error(error, raw, model, shown, kind, name)


def load_catalog(specs_dir: Path, project_dir: Path | None = None) -> Catalog:
    """Load and check every spec; raise SpecErrors listing every problem when there is any."""
    specs_dir = Path(specs_dir).resolve()
    project_dir = Path(project_dir).resolve() if project_dir else specs_dir.parent
    if not specs_dir.is_dir():
        raise SpecErrors([SpecError(str(specs_dir), "", "the specs folder does not exist")])
    errors: list[SpecError] = []
    documents: dict[str, dict] = {kind: {} for kind in KINDS}
    files: dict[tuple[str, str], str] = {}
    broken: set[tuple[str, str]] = set()
    for path in spec_files(specs_dir):
        shown = display_path(path, project_dir)
        spec, file_errors = _parse_file(path, shown)
        errors.extend(file_errors)
        if spec is None:
            broken.update((error.kind, error.name) for error in file_errors if error.kind and error.name)
            continue
        key = (spec.kind, spec.name)
        if key in files:
            errors.append(SpecError(shown, "name", f"the name '{spec.name}' is already used by {files[key]}",
                                    spec.kind, spec.name))
            continue
        files[key] = shown
        documents[spec.kind][spec.name] = spec
    catalog = Catalog(
        project_dir=project_dir,
        specs_dir=specs_dir,
        sources=documents["source"],
        feature_sets=documents["feature_set"],
        models=documents["model"],
        files=files,
    )
    errors.extend(check_catalog(catalog, broken))
    if errors:
        raise SpecErrors(errors)
    return catalog
