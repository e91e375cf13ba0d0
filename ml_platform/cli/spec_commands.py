"""`ml-platform validate`, `ml-platform schema` and `ml-platform dependencies`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ml_platform.cli.common import project_of
from ml_platform.specs.errors import SpecErrors


def command_validate(arguments: argparse.Namespace) -> int:
    """Check every spec; print every error at once."""
    from ml_platform.features.library import load_catalog

    project = project_of(arguments)
    specs_dir = Path(arguments.specs) if arguments.specs else project.specs_dir
    try:
        catalog = load_catalog(specs_dir, project.root)
    except SpecErrors as errors:
        print(errors, file=sys.stderr)
        return 1
    entities = f"{len(catalog.entities)} entities, " if catalog.entities else ""
    print(f"{len(catalog.sources)} sources, {entities}{len(catalog.feature_sets)} feature sets, "
          f"{len(catalog.models)} models: all valid")
    for model in catalog.models.values():
        print(f"  {model.name}: spec hash {catalog.spec_hash(model)}, {len(model.features)} features from "
              f"{len(catalog.feature_sets_of(model))} feature sets, {model.algorithm.kind}")
    return 0


def command_schema(arguments: argparse.Namespace) -> int:
    """Write the JSON schema of spec files, for editors."""
    from ml_platform.specs.schema import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n"
    if arguments.output:
        Path(arguments.output).write_text(text, encoding="utf-8")
        print(f"wrote {arguments.output}")
    else:
        sys.stdout.write(text)
    return 0


def command_dependencies(arguments: argparse.Namespace) -> int:
    """Print every source a model depends on: trust level, what pulls it in, and the spec's opt-in."""
    from ml_platform.specs.dependencies import dependencies_text
    from ml_platform.specs.errors import unknown_name
    from ml_platform.features.library import load_catalog

    project = project_of(arguments)
    try:
        catalog = load_catalog(project.specs_dir, project.root)
    except SpecErrors as errors:
        print(errors, file=sys.stderr)
        return 1
    if arguments.model not in catalog.models:
        print(f"error: {unknown_name('model', arguments.model, catalog.models)}", file=sys.stderr)
        return 2
    print(dependencies_text(catalog, catalog.models[arguments.model]))
    return 0


def register(commands) -> None:
    """Add the spec subcommands."""
    validate = commands.add_parser("validate", help="check every spec and print every error at once")
    validate.add_argument("--specs", help="specs folder (default: <project>/model_specs)")
    validate.set_defaults(handler=command_validate)

    schema = commands.add_parser("schema", help="print or write the JSON schema of spec files")
    schema.add_argument("--output", help="file to write (default: standard output)")
    schema.set_defaults(handler=command_schema)

    dependencies = commands.add_parser(
        "dependencies", help="every source a model depends on: trust level, what pulls it in, the spec's opt-in")
    dependencies.add_argument("model", help="the name of a model spec")
    dependencies.set_defaults(handler=command_dependencies)
