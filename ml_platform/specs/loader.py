"""Read every YAML file under the specs folder into typed specs, or raise every error found at once."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from ml_platform.specs.catalog import Catalog
from ml_platform.specs.checks import check_catalog, check_unparsed_names
from ml_platform.specs.errors import SpecError, SpecErrors, display_path, from_validation_error, unknown_name
from ml_platform.specs.functions import FunctionLibrary
from ml_platform.specs.models import KINDS

SPEC_SUFFIXES = (".yaml", ".yml")


def spec_files(specs_dir: Path) -> list[Path]:
    """Every spec file under the folder, in a stable order."""
    return sorted(path for path in specs_dir.rglob("*") if path.suffix in SPEC_SUFFIXES and path.is_file())


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A safe YAML loader that rejects a key written twice in one mapping instead of keeping the last."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key '{key}' appears twice in one mapping (first on line {seen[key] + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


# Dates stay text, parsed by the spec models: PyYAML would turn 2013-13-01 into a ValueError that names no field.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read_yaml(path: Path, shown: str) -> tuple[object, list[SpecError]]:
    """The file's one YAML document, or the error that stops it."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader), []
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
        if context and problem.startswith("but "):  # e.g. "expected a single document in the stream, but found ..."
            problem = f"{context}, {problem}"
        elif context and context_mark and mark and context_mark.line != mark.line:
            problem += f" ({context} started at line {context_mark.line + 1}, column {context_mark.column + 1})"
        return None, [SpecError(shown, "", f"YAML syntax error{where}: {problem}")]
    except UnicodeDecodeError as error:
        return None, [SpecError(shown, "", f"not UTF-8 text: {error.reason}")]
    except ValueError as error:  # a value PyYAML cannot build, e.g. an explicitly tagged !!timestamp
        return None, [SpecError(shown, "", f"YAML value error: {error}")]


def _parse_file(path: Path, shown: str) -> tuple[object | None, dict | None, list[SpecError]]:
    """One file's document as a typed spec, its raw mapping, and the errors that stop it."""
    raw, errors = _read_yaml(path, shown)
    if errors:
        return None, None, errors
    if not isinstance(raw, dict):
        given = "an empty file" if raw is None else f"a {type(raw).__name__}"
        message = f"a spec file must hold one mapping with a 'kind' field, found {given}"
        return None, None, [SpecError(shown, "", message)]
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        kinds = ", ".join(sorted(KINDS))
        message = (f"missing required field (allowed: {kinds})" if kind is None else
                   f"must be one of {kinds} (given {kind!r})" if not isinstance(kind, str) else
                   unknown_name("kind", kind, KINDS))
        return None, raw, [SpecError(shown, "kind", message, None, name)]
    model = KINDS[kind]
    try:
        return model.model_validate(raw), raw, []
    except ValidationError as error:
        return None, raw, from_validation_error(error, raw, model, shown, kind, name)


def _broken_names(raw: dict | None, errors: list[SpecError]) -> set[tuple[str, str]]:
    """What a file that failed to load would have declared, so that specs naming it get no second error."""
    names = {(error.kind, error.name) for error in errors if error.kind and error.name}
    if not any(error.kind for error in errors):
        names.add(("file", errors[0].file))  # not even its kind is known
    if isinstance(raw, dict) and raw.get("kind") == "feature_set" and isinstance(raw.get("features"), dict):
        names.update(("feature", str(feature)) for feature in raw["features"])
    return names


def load_catalog(specs_dir: Path, project_dir: Path | None = None, functions: FunctionLibrary | None = None) -> Catalog:
    """Load and check every spec against the given registered feature functions (none when omitted); raise
    SpecErrors listing every problem when there is any."""
    specs_dir = Path(specs_dir).resolve()
    project_dir = Path(project_dir).resolve() if project_dir else specs_dir.parent
    if not specs_dir.is_dir():
        raise SpecErrors([SpecError(str(specs_dir), "", "the specs folder does not exist")])
    errors: list[SpecError] = []
    documents: dict[str, dict] = {kind: {} for kind in KINDS}
    files: dict[tuple[str, str], str] = {}
    broken: set[tuple[str, str]] = set()
    unparsed: list[tuple[dict, list[SpecError]]] = []  # documents of a known kind that failed validation
    for path in spec_files(specs_dir):
        shown = display_path(path, project_dir)
        spec, raw, file_errors = _parse_file(path, shown)
        errors.extend(file_errors)
        if spec is None:
            broken.update(_broken_names(raw, file_errors))
            if raw is not None and raw.get("kind") in ("model", "feature_set") and file_errors[0].kind:
                unparsed.append((raw, file_errors))
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
        functions=dict(functions or {}),
        entities=documents["entity"],
    )
    errors.extend(check_catalog(catalog, broken))
    for raw, file_errors in unparsed:
        errors.extend(check_unparsed_names(catalog, raw, file_errors, broken))
    if errors:
        raise SpecErrors(errors)
    return catalog
