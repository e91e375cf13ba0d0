"""`ml-platform validate` and `ml-platform schema`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ml_platform.cli.common import project_of
from ml_platform.specs.errors import SpecErrors


def command_validate(arguments: argparse.Namespace) -> int:
    """Check every spec; print every error at once."""
    from ml_platform.specs.loader import load_catalog

    project = project_of(arguments)
    specs_dir = Path(arguments.specs) if arguments.specs else project.specs_dir
    try:
        catalog = load_catalog(specs_dir, project.root)
    except SpecErrors as errors:
        print(errors, file=sys.stderr)
        return 1
    print(f"{len(catalog.sources)} sources, {len(catalog.feature_sets)} feature sets, "
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


def register(commands) -> None:
    """Add the spec subcommands."""
    validate = commands.add_parser("validate", help="check every spec and print every error at once")
    validate.add_argument("--specs", help="specs folder (default: <project>/model_specs)")
    validate.set_defaults(handler=command_validate)

    schema = commands.add_parser("schema", help="print or write the JSON schema of spec files")
    schema.add_argument("--output", help="file to write (default: standard output)")
    schema.set_defaults(handler=command_schema)
