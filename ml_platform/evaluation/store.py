"""Store an evaluation once: its per-row predictions (Parquet), plots (PNG), report (Markdown) and summary.

Every file is content-addressed in the artifact store and never replaced; the registry row ties them to the
training run. The Markdown report links its plots by relative path, so the file reads well on its own.
"""

from __future__ import annotations

import base64
import json
import posixpath

import duckdb

from ml_platform.evaluation.evaluate import Evaluation
from ml_platform.evaluation.predictions_file import stored_file, write_predictions
from ml_platform.evaluation.plots import draw_plots
from ml_platform.evaluation.report import render_report
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore


def store_evaluation(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, evaluation: Evaluation) -> dict:
    """Write the evaluation's files and its registry row once; return the row (the existing one when stored)."""
    summary = evaluation.summary
    model = summary["model"]
    existing = registry.fetch_one(connection, "evaluations", model=model, training_run=summary["training_run"])
    if existing is not None:
        return {**existing, "reused": True}
    files = {"predictions": write_predictions(connection, artifacts, model, evaluation.predictions), "plots": {}}
    for name, png in draw_plots(summary).items():
        stored = artifacts.write(f"reports/{model}/plots", ".png", lambda path, data=png: path.write_bytes(data))
        files["plots"][name] = stored_file(stored)
    summary["artifacts"] = files
    relative = {name: posixpath.relpath(plot["path"], f"reports/{model}") for name, plot in files["plots"].items()}
    markdown = render_report(summary, relative)
    report = artifacts.write(f"reports/{model}", ".md", lambda path: path.write_text(markdown, encoding="utf-8"))
    files["report_markdown"] = stored_file(report)
    plain = json.loads(json.dumps(summary, default=float))
    document = json.dumps({"summary": plain, "report_markdown": markdown}, sort_keys=True, indent=1)
    stored = artifacts.write(f"reports/{model}", ".json", lambda path: path.write_text(document, encoding="utf-8"))
    row = {
        "model": model, "training_run": summary["training_run"], "model_version": summary["model_version"],
        "report_path": stored.path, "report_sha256": stored.sha256, "summary": plain,
        "gate_passed": bool(summary["gate_passed"]), "created_at": registry.now(),
    }
    registry.insert(connection, "evaluations", row)
    return {**row, "reused": False}


def report_with_inline_plots(artifacts: ArtifactStore, summary: dict) -> str:
    """The report with its plots inline as base64 PNG data, for the Dagster UI (plots are verified first)."""
    images = {}
    for name, plot in summary.get("artifacts", {}).get("plots", {}).items():
        data = artifacts.verify(plot["path"], plot["sha256"]).read_bytes()
        images[name] = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return render_report(summary, images)
