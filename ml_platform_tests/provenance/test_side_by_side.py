"""The challenger beside the champion it replaced: on the deployment asset's page and in its evaluation report."""

from __future__ import annotations

import dagster as dg
import pytest

from ml_platform import names
from ml_platform.storage.artifacts import ArtifactStore

from ml_platform_tests.provenance.helpers import fetch

# reads the shared history, whose chains of Dagster runs the full suite alone builds
pytestmark = pytest.mark.slow


def deployment_metadata(history, training_run: str) -> dict:
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("DAGSTER_HOME", str(history.dagster_home))
        with dg.DagsterInstance.get() as instance:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=names.stage_key("deployment", "flight_delay"),
                                      asset_partitions=[training_run]), limit=1).records
    return records[0].asset_materialization.metadata


def test_the_deployment_page_sets_the_new_champion_beside_the_one_it_replaced(history):
    second = fetch(history.project, "evaluations", training_run=history.second_run).summary
    first = fetch(history.project, "evaluations", model_version=history.first).summary
    metadata = deployment_metadata(history, history.second_run)
    text = metadata["comparison"].value
    details = second.gate.beats_champion.details
    assert details.champion == history.first
    assert text.startswith("### Challenger beside the champion\n\n"
                           f"On the same {details.rows:,} test rows ({details.window[0]} to {details.window[1]}), "
                           f"valued with the challenger's money values: challenger "
                           f"{details.challenger_money:,.0f} USD, champion {details.champion_money:,.0f} USD, gain "
                           f"**{details.gain:,.0f} USD** (paired 95% interval ")
    assert f"| | champion {history.first} | challenger {history.second} |" in text
    assert f"| ROC AUC | {first.test.roc_auc:.4f} | {second.test.roc_auc:.4f} |" in text
    assert f"| threshold (chosen on validation) | {first.threshold:.4f} | {second.threshold:.4f} |" in text
    assert "| distance_miles | 100.0% | – |" in text


def test_the_first_deployment_has_no_champion_to_compare_with(history):
    first = fetch(history.project, "models", model_version=history.first)
    assert "comparison" not in deployment_metadata(history, first.training_run)


def test_the_evaluation_report_file_sets_the_challenger_beside_the_champion(history):
    record = fetch(history.project, "evaluations", training_run=history.second_run)
    store = ArtifactStore(root=str(history.project.storage.artifacts))
    report = record.summary.artifacts.report_markdown
    text = store.verify(report.path, report.sha256).read_text(encoding="utf-8")
    assert "\n## Challenger beside the champion\n" in text
    assert f"| | champion {history.first} | challenger {history.second} |" in text
    first = fetch(history.project, "evaluations", model_version=history.first)
    first_report = first.summary.artifacts.report_markdown
    assert "Challenger beside the champion" not in store.verify(first_report.path, first_report.sha256).read_text()
