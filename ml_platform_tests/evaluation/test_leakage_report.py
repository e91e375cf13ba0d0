"""The report and headline show the leakage guard's training and validation scores and its out-of-time warning."""

from __future__ import annotations

import numpy as np

from ml_platform.evaluation.leakage import leakage_result, out_of_time_signal
from ml_platform.evaluation.report import headline, headline_markdown, render_report
from ml_platform.records.evaluation import EvaluationSummary
from ml_platform.records.gate import FeatureAuc
from ml_platform_tests.evaluation.test_plots_and_report import summary


def with_guard(figures: list[tuple[str, float, float | None]], training_rows: int = 20_000,
               validation_rows: int = 20_000) -> EvaluationSummary:
    """The synthetic summary with the leakage guard's scores and check as evaluate stores them."""
    aucs = tuple(FeatureAuc(feature=name, type="number", roc_auc=train, validation_roc_auc=validation)
                 for name, train, validation in figures)
    training, validation = np.arange(training_rows) % 2, np.arange(validation_rows) % 2
    check = leakage_result(aucs, 0.97, training_rows, validation_rows=validation_rows,
                           out_of_time=out_of_time_signal(aucs, training, validation))
    base = summary()
    return base.model_copy(update={"single_feature_roc_auc": aucs,
                                   "gate": base.gate.model_copy(update={"no_leakage": check})})


def section(report: str) -> str:
    return report[report.index("## Single features alone (leakage guard)"):]


def test_the_report_puts_validation_beside_training_and_warns_of_a_collapse():
    figures = [(f"honest_{index}", 0.70 - index / 100, 0.69 - index / 100) for index in range(9)]
    figures.append(("feed", 0.56, 0.50))  # tenth by training score: shown because it is flagged
    evaluated = with_guard(figures)
    text = section(render_report(evaluated))
    assert "| feature | type | ROC AUC training | ROC AUC validation | signal kept |" in text
    assert "| honest_0 | number | 0.7000 | 0.6900 | 95% |" in text
    assert "| honest_8 |" not in text  # the ninth honest feature is beyond the eight strongest
    assert "| feed **(lost out of time)** | number | 0.5600 | 0.5000 | 0% |" in text
    assert "**Warning (does not block the gate)**: feature 'feed' (ROC AUC 0.5600 on training, 0.5000 on " \
           "validation: 0% of its signal kept, chance ± 0.0" in text
    assert "Rule: flagged when a feature's training signal (ROC AUC − 0.5) is at least 0.05" in text
    assert headline(evaluated).endswith("; warning: 'feed' lost signal out of time")
    assert "warning: 'feed' lost signal out of time**" in headline_markdown(evaluated)


def test_without_a_collapse_the_report_says_so_and_the_headline_does_not_warn():
    evaluated = with_guard([("hour", 0.70, 0.66), ("weak", 0.52, 0.49)])
    text = section(render_report(evaluated))
    assert "| hour | number | 0.7000 | 0.6600 | 80% |" in text
    assert "| weak | number | 0.5200 | 0.4900 | – |" in text  # too weak in training for a share to mean anything
    assert "\n\nNo feature loses its signal out of time: none of the 1 with training ROC AUC ≥ 0.55" in text
    assert "warning" not in headline(evaluated) and "Warning" not in text


def test_a_collapse_too_small_to_tell_from_chance_is_not_claimed():
    evaluated = with_guard([("feed", 0.70, 0.55)], validation_rows=60)
    assert "lost out of time" not in render_report(evaluated) and "warning" not in headline(evaluated)


def test_a_summary_stored_before_validation_scores_keeps_its_old_section():
    base = summary()
    old = base.model_copy(update={"single_feature_roc_auc": (
        FeatureAuc(feature="hour", type="number", roc_auc=0.62),)})
    text = render_report(old)
    assert "## Strongest single features (training rows, leakage guard)" in text
    assert "| hour | number | 0.6200 |" in text and "validation" not in text.split("leakage guard)")[1]
