"""A model's data dependencies in words: every source it reads, how far it is trusted, what pulls it in and the
spec's opt-in, as the markdown table of the model's page in the Dagster UI and as the text of the CLI."""

from __future__ import annotations

import textwrap

from ml_platform.specs.catalog import Catalog, SourceDependency
from ml_platform.specs.models import ModelSpec

COLUMNS = ("source", "trust", "partitioning", "read through", "model features", "opt-in")


def _read_through(dependency: SourceDependency) -> str:
    named = {"entity": "entity (rows, label, money)", "label": "label (aggregates over the horizon)"}
    return "; ".join(named.get(via, via) for via in dependency.via)


def _opt_in(dependency: SourceDependency) -> str:
    accepted = dependency.accepted
    if not dependency.needs_opt_in:
        return "not needed (internal)"
    if accepted is None:
        return "MISSING"
    return f"accepted by {accepted.reviewed_by} on {accepted.reviewed_on}: {' '.join(accepted.reason.split())}"


def _no_feature(dependency: SourceDependency) -> str:
    """What a source with no feature of its own feeds: every row (the entity), or only the label."""
    return "none (the label only)" if dependency.via == ("label",) else "all"


def dependency_rows(catalog: Catalog, model: ModelSpec) -> list[tuple[str, ...]]:
    """One row of texts per source the model depends on, in the order of COLUMNS."""
    return [(dependency.source, dependency.trust, "daily" if dependency.daily else "whole table",
             _read_through(dependency), ", ".join(dependency.features) or _no_feature(dependency),
             _opt_in(dependency)) for dependency in catalog.source_dependencies(model)]


def dependencies_markdown(catalog: Catalog, model: ModelSpec) -> str:
    """The markdown table of the model's data dependencies."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(text) for text in row) + " |" for row in dependency_rows(catalog, model)]
    return "\n".join(lines)


def dependencies_text(catalog: Catalog, model: ModelSpec) -> str:
    """The data dependencies as `ml-platform dependencies` prints them: one block per source."""
    dependencies = catalog.source_dependencies(model)
    outside = [dependency.source for dependency in dependencies if dependency.needs_opt_in]
    lines = [f"{model.name} depends on {len(dependencies)} source(s); "
             + (f"{len(outside)} not internal, each accepted in its spec: {', '.join(outside)}" if outside else
                "all internal")]
    for source, trust, partitioning, through, features, opt_in in dependency_rows(catalog, model):
        lines += [f"  {source} ({trust}, {partitioning})",
                  f"    read through    {through}",
                  f"    model features  {features}",
                  textwrap.fill(opt_in, width=116, initial_indent="    opt-in          ",
                                subsequent_indent=" " * 20)]
    return "\n".join(lines)
