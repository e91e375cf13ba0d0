"""Store an evaluation once: its per-row predictions (Parquet), plots (PNG), report (Markdown) and summary.

Every file is content-addressed in the artifact store and never replaced; the registry record ties them to the
training run. The Markdown report links its plots by relative path, so the file reads well on its own.
"""

from __future__ import annotations

import base64
import json
import posixpath
from typing import Callable

import duckdb

from ml_platform.evaluation.evaluate import Evaluation, evaluate
from ml_platform.evaluation.plots import draw_plots
from ml_platform.evaluation.predictions_file import stored_file, write_predictions
from ml_platform.evaluation.report import render_report
from ml_platform.evaluation.side_by_side import compared_champion
from ml_platform.evaluation.search_report import draw_search_plot
from ml_platform.records.evaluation import EvaluationFiles, EvaluationSummary
from ml_platform.records.outcomes import Stored
from ml_platform.records.registry import EvaluationRecord
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore


def store_evaluation(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore,
                     evaluation: Evaluation) -> Stored[EvaluationRecord]:
    """Write the evaluation's files and its registry record once; the stored one (reused) when there is one."""
    summary = evaluation.summary
    model = summary.model
    existing = registry.evaluations.get(connection, model, summary.training_run)
    if existing is not None:
        return Stored(existing, reused=True)
    predictions = write_predictions(connection, artifacts, model, evaluation.predictions)
    plots = {}
    for name, png in {**draw_plots(summary), **draw_search_plot(summary)}.items():
        stored = artifacts.write(f"reports/{model}/plots", ".png", lambda path, data=png: path.write_bytes(data))
        plots[name] = stored_file(stored)
    files = EvaluationFiles(predictions=predictions, plots=plots)
    summary = summary.model_copy(update={"artifacts": files})
    relative = {name: posixpath.relpath(plot.path, f"reports/{model}") for name, plot in plots.items()}
    champion = compared_champion(connection, summary)
    markdown = render_report(summary, relative, champion)
    report = artifacts.write(f"reports/{model}", ".md", lambda path: path.write_text(markdown, encoding="utf-8"))
    summary = summary.model_copy(update={"artifacts": files.model_copy(
        update={"report_markdown": stored_file(report)})})
    document = json.dumps({"summary": summary.plain(), "report_markdown": markdown}, sort_keys=True, indent=1)
    stored = artifacts.write(f"reports/{model}", ".json", lambda path: path.write_text(document, encoding="utf-8"))
    record = EvaluationRecord(model=model, training_run=summary.training_run, model_version=summary.model_version,
                              report_path=stored.path, report_sha256=stored.sha256, summary=summary,
                              gate_passed=summary.gate_passed, created_at=registry.now())
    registry.evaluations.add(connection, record)
    return Stored(record, reused=False)


def evaluation_of_run(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                      model: ModelSpec, training_run: str,
                      say: Callable[[str], None] | None = None) -> Stored[EvaluationRecord]:
    """The run's stored evaluation (reused), or the run evaluated and stored now (`say` as evaluate's)."""
    existing = registry.evaluations.get(connection, model.name, training_run)
    if existing is not None:
        return Stored(existing, reused=True)
    return store_evaluation(connection, artifacts, evaluate(connection, artifacts, catalog, model, training_run,
                                                            say))


def report_with_inline_plots(artifacts: ArtifactStore, summary: EvaluationSummary,
                             champion: EvaluationSummary | None = None) -> str:
    """The report with its plots inline as base64 PNG data, for the Dagster UI (plots are verified first);
    `champion` as render_report's."""
    images = {}
    for name, plot in (summary.artifacts.plots if summary.artifacts is not None else {}).items():
        data = artifacts.verify(plot.path, plot.sha256).read_bytes()
        images[name] = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return render_report(summary, images, champion)
