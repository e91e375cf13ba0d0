"""The leakage guard out of time: validation scores beside the training ones, and the collapse warning's rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation.leakage import (
    KEPT, MATERIAL_SIGNAL, NOISE_Z, design_effects, leakage_result, null_standard_error, out_of_time_signal,
    single_feature_aucs, with_validation)
from ml_platform.evaluation.rank_statistics import agreement_correlation, concordance, intraclass_correlation, roc_auc
from ml_platform.records.gate import FeatureAuc, LeakageDetails


def test_the_null_standard_error_is_mann_whitneys_for_a_zero_one_label():
    label = np.r_[np.zeros(700, dtype=int), np.ones(300, dtype=int)]
    assert null_standard_error(label) == pytest.approx(np.sqrt((1000 + 1) / (12 * 700 * 300)), rel=1e-12)
    # multiclass: the largest of the one-vs-rest splits, i.e. the rarest class's
    classes = np.r_[np.zeros(700, dtype=int), np.ones(280, dtype=int), np.full(20, 2)]
    assert null_standard_error(classes, "multiclass") == pytest.approx(
        null_standard_error((classes == 2).astype(int)), rel=1e-12)
    with pytest.raises(ValueError, match="two different labels"):
        null_standard_error(np.ones(10, dtype=int))


@pytest.mark.parametrize("task", ["binary_classification", "regression"])
def test_the_null_standard_error_matches_the_spread_of_scores_of_shuffled_features(task):
    generator = np.random.default_rng(11)
    size = 400
    label = (generator.random(size) < 0.2).astype(int) if task == "binary_classification" else \
        np.round(generator.gamma(2.0, 5.0, size))  # whole minutes: many tied labels
    feature = generator.normal(size=size)
    score = roc_auc if task == "binary_classification" else concordance
    spread = np.std([score(label, generator.permutation(feature)) for _ in range(2000)])
    assert null_standard_error(label, task) == pytest.approx(spread, rel=0.08)


def rows(*figures: tuple[str, float, float | None]) -> tuple[FeatureAuc, ...]:
    return tuple(FeatureAuc(feature=name, type="number", roc_auc=train, validation_roc_auc=validation)
                 for name, train, validation in figures)


def balanced(size: int) -> np.ndarray:
    return np.arange(size) % 2


def test_a_feature_that_loses_its_signal_is_flagged_and_the_rest_are_not():
    training, validation = balanced(200_000), balanced(20_000)
    noise = NOISE_Z * np.hypot(null_standard_error(validation), KEPT * null_standard_error(training))
    aucs = rows(("feed", 0.80, 0.55),                 # keeps 17% of its signal: flagged
                ("hour", 0.70, 0.62),                 # keeps 60%: fine
                ("edge", 0.70, 0.60 - noise + 1e-4),  # below half, but not by more than chance allows: not flagged
                ("weak", 0.5 + MATERIAL_SIGNAL - 1e-4, 0.5),  # too weak in training to speak of a collapse
                ("dead", 0.60, 0.50))                 # kept nothing: flagged
    warning = out_of_time_signal(aucs, training, validation)
    assert warning.judged and warning.flagged
    assert [row.feature for row in warning.collapsed] == ["feed", "dead"]
    feed = warning.collapsed[0]
    assert (feed.training, feed.validation, feed.kept) == (0.80, 0.55, round(0.05 / 0.30, 4))
    assert feed.noise == pytest.approx(noise, abs=1e-6)
    assert warning.why.startswith(f"feature 'feed' (ROC AUC 0.8000 on training, 0.5500 on validation: 17% of its "
                                  f"signal kept, chance ± {noise:.4f}), 'dead' (ROC AUC 0.6000 on training, 0.5000 "
                                  f"on validation: 0% of its signal kept, chance ± {noise:.4f}) loses its signal out "
                                  f"of time, by more than chance explains")
    assert warning.rule == ("flagged when a feature's training signal (ROC AUC − 0.5) is at least 0.05 and its "
                            "validation signal is below 50% of it by more than 2 standard errors of chance (the "
                            "rows of one day counted as correlated)")
    # just past the allowance the edge feature is flagged too: the allowance is the rule's only slack
    past = out_of_time_signal(rows(("edge", 0.70, 0.60 - noise - 1e-4)), training, validation)
    assert [row.feature for row in past.collapsed] == ["edge"]


def test_no_collapse_is_claimed_on_a_validation_window_too_small_to_tell():
    # the same drop on 60 validation rows is within chance: saying it collapsed would be a false verdict
    aucs = rows(("feed", 0.70, 0.55))
    assert out_of_time_signal(aucs, balanced(200_000), balanced(20_000)).flagged
    small = out_of_time_signal(aucs, balanced(200_000), balanced(60))
    assert small.judged and not small.flagged and small.collapsed == ()
    assert small.why.startswith("no feature loses its signal out of time: none of the 1 with training ROC AUC ≥ "
                                "0.55 falls on validation below 50% of its training signal (ROC AUC − 0.5) by more "
                                "than chance allows")


def test_nothing_is_judged_without_a_second_label_on_validation_or_without_material_signal():
    aucs = rows(("feed", 0.80, None))
    unjudged = out_of_time_signal(aucs, balanced(1000), np.zeros(500, dtype=int))
    assert not unjudged.judged and not unjudged.flagged
    assert unjudged.why == "not judged: the 500 validation rows hold fewer than two different labels"
    quiet = out_of_time_signal(rows(("hour", 0.53, 0.50)), balanced(1000), balanced(1000))
    assert quiet.judged and not quiet.flagged
    assert quiet.why == "nothing to judge: no feature reaches ROC AUC 0.55 on the training rows"


def test_the_warning_names_the_tasks_score():
    warning = out_of_time_signal(rows(("minutes", 0.90, 0.52)), np.arange(5000.0), np.arange(5000.0),
                                 task="regression")
    assert warning.flagged and warning.why.startswith("feature 'minutes' (concordance 0.9000 on training")


def test_training_and_validation_scores_come_from_the_same_method_on_each_window():
    generator = np.random.default_rng(4)
    train_label, validation_label = balanced(4000), balanced(2000)
    train = pd.DataFrame({"feed": train_label + generator.normal(scale=0.3, size=4000),
                          "hour": generator.normal(size=4000) + 0.5 * train_label})
    validation = pd.DataFrame({"feed": generator.normal(size=2000),  # the feed broke: no signal any more
                               "hour": generator.normal(size=2000) + 0.5 * validation_label})
    kinds = {"feed": "number", "hour": "number"}
    aucs = with_validation(single_feature_aucs(train, kinds, train_label, seed=3),
                           single_feature_aucs(validation, kinds, validation_label, seed=3))
    on_validation = {row.feature: row.roc_auc for row in single_feature_aucs(validation, kinds, validation_label,
                                                                               seed=3)}
    assert [row.feature for row in aucs] == ["feed", "hour"]  # training order, strongest first
    assert {row.feature: row.validation_roc_auc for row in aucs} == on_validation
    assert aucs[0].roc_auc > 0.9 and aucs[0].validation_roc_auc < 0.56
    warning = out_of_time_signal(aucs, train_label, validation_label)
    assert [row.feature for row in warning.collapsed] == ["feed"]
    with pytest.raises(ValueError, match="lack the feature"):
        with_validation(aucs, aucs[:1])


def test_the_gate_check_shows_validation_beside_training_and_still_decides_on_training():
    aucs = rows(("vendor_delay", 0.999, 0.998), ("hour", 0.62, 0.61))
    warning = out_of_time_signal(aucs, balanced(1000), balanced(400))
    failed = leakage_result(aucs, 0.97, 1000, validation_rows=400, out_of_time=warning)
    assert not failed.passed
    assert failed.why.startswith("feature 'vendor_delay' (ROC AUC 0.9990; 0.9980 on validation) alone predicts "
                                 "the label on the 1,000 training rows almost perfectly")
    details = failed.details
    assert (details.validation_rows_used, details.validation_rows_available) == (400, 400)
    assert details.out_of_time == warning and details.score == "ROC AUC"
    passed = leakage_result(aucs[1:], 0.97, 1000, validation_rows=400, validation_available=9000)
    assert passed.passed and passed.why == ("no feature predicts the label alone: the strongest, 'hour', has ROC AUC "
                                            "0.6200 < 0.97 on the 1,000 training rows (0.6100 on a fixed-seed sample "
                                            "of 400 of the 9,000 validation rows)")
    # a leak seen only on validation does not fail the check, and a flagged collapse never does
    collapsing = rows(("feed", 0.90, 0.50), ("late", 0.60, 0.99))
    warned = out_of_time_signal(collapsing, balanced(10_000), balanced(10_000))
    assert warned.flagged and leakage_result(collapsing, 0.97, 10_000, validation_rows=10_000,
                                             out_of_time=warned).passed


def test_records_stored_before_the_validation_window_was_measured_still_read():
    old = {"limit": 0.97, "rows_used": 1000, "rows_available": 1000, "leaking_features": [],
           "strongest_features": [{"feature": "hour", "type": "number", "roc_auc": 0.62}]}
    details = LeakageDetails.model_validate(old)
    assert details.out_of_time is None and details.strongest_features[0].validation_roc_auc is None
    assert details.score == "ROC AUC"
    # and an absent validation figure stays absent in JSON
    assert "validation_roc_auc" not in details.strongest_features[0].plain()


def days_of_rows(days: int, per_day: int, seed: int, day_spread: float = 1.0) -> pd.DataFrame:
    """Rows of `days` days whose labels share each day's conditions (a day effect on the log-odds), with a feature
    fixed for the day (its weather, say) and one drawn per row, neither related to the label."""
    generator = np.random.default_rng(seed)
    day = np.repeat(np.arange(days), per_day)
    effect = generator.normal(scale=day_spread, size=days)[day]
    label = (generator.random(days * per_day) < 1 / (1 + np.exp(1.0 - effect))).astype(int)
    return pd.DataFrame({"partition_date": pd.Timestamp("2013-01-01") + pd.to_timedelta(day, unit="D"),
                         "label": label, "weather": np.round(generator.normal(size=days)[day], 2),
                         "per_row": generator.normal(size=days * per_day)})


def test_intraclass_correlations_recover_a_known_share_of_variance():
    generator = np.random.default_rng(8)
    groups = np.repeat(np.arange(400), 50)
    values = generator.normal(scale=np.sqrt(0.3), size=400)[groups] + generator.normal(scale=np.sqrt(0.7),
                                                                                         size=len(groups))
    assert intraclass_correlation(values, groups) == pytest.approx(0.3, abs=0.03)
    assert intraclass_correlation(generator.normal(size=len(groups)), groups) < 0.01
    assert intraclass_correlation(np.repeat(generator.normal(size=400), 50), groups) == pytest.approx(1.0)
    codes = generator.integers(0, 4, 400)[groups]
    assert agreement_correlation(codes, groups) == pytest.approx(1.0)
    assert agreement_correlation(generator.integers(0, 4, len(groups)), groups) < 0.01


def test_rows_of_one_day_count_as_correlated_where_the_feature_and_the_label_are():
    kinds = {"weather": "number", "per_row": "number"}
    training, validation = days_of_rows(120, 200, seed=1), days_of_rows(10, 200, seed=2)
    effects = design_effects(training, validation, kinds)
    assert effects["per_row"][1] < 1.5  # a feature that does not follow the day: rows are nearly independent
    assert effects["weather"][1] > 20  # a feature of the day on day-correlated labels: about one row per day
    # the corrected standard error matches the real spread of a day feature's score over windows of ten days
    spread = np.std([roc_auc(window["label"].to_numpy(), window["weather"].to_numpy())
                     for window in (days_of_rows(10, 200, seed=100 + index) for index in range(300))])
    corrected = np.sqrt(effects["weather"][1]) * null_standard_error(validation["label"].to_numpy())
    assert 0.7 < corrected / spread < 1.5, (corrected, spread)
    assert null_standard_error(validation["label"].to_numpy()) < spread / 3  # rows alone would claim far too much


def test_a_day_feature_that_goes_quiet_on_a_few_days_is_not_called_a_collapse():
    # ten validation days: a weather feature's training signal of 0.60 can vanish by chance; a row feature's cannot
    training, validation = days_of_rows(120, 200, seed=3), days_of_rows(10, 200, seed=4)
    effects = design_effects(training, validation, {"weather": "number", "per_row": "number"})
    aucs = rows(("weather", 0.60, 0.50), ("per_row", 0.60, 0.50))
    warning = out_of_time_signal(aucs, training["label"].to_numpy(), validation["label"].to_numpy(),
                                 effects=effects)
    assert [row.feature for row in warning.collapsed] == ["per_row"]
    assert warning.collapsed[0].design_effects == effects["per_row"]


@pytest.mark.parametrize("task", ["binary_classification", "regression", "multiclass"])
def test_the_guard_reads_both_windows_of_a_snapshot_file_for_every_task(tmp_path, task):
    import duckdb

    from ml_platform.evaluation.leakage import measure_leakage

    generator = np.random.default_rng(12)
    frames = []
    windows = (("train", 40, "2013-01-01"), ("validation", 10, "2013-02-10"), ("test", 5, "2013-02-20"))
    for split, days, start in windows:
        size = days * 100
        minutes = generator.gamma(2.0, 15.0, size)
        label = {"binary_classification": (minutes > 30).astype(int), "regression": minutes,
                 "multiclass": np.digitize(minutes, [15, 30, 60])}[task]
        # the feed follows the delay in training and broke afterwards
        feed = minutes + generator.normal(scale=15.0, size=size) if split == "train" else generator.normal(size=size)
        frames.append(pd.DataFrame({
            "split": split, "label": label, "feed": feed, "noise": generator.normal(size=size),
            "partition_date": pd.Timestamp(start) + pd.to_timedelta(np.repeat(np.arange(days), 100), unit="D")}))
    path = tmp_path / "snapshot.parquet"
    connection = duckdb.connect()
    connection.register("rows", pd.concat(frames, ignore_index=True))
    connection.execute(f"COPY rows TO '{path}' (FORMAT parquet)")
    aucs, check = measure_leakage(connection, path, {"feed": "number", "noise": "number"}, 0.97, seed=5, task=task)
    feed = next(row for row in aucs if row.feature == "feed")
    assert 0.75 < feed.roc_auc < 0.97 and feed.validation_roc_auc < 0.56
    score = {"binary_classification": "ROC AUC", "regression": "concordance", "multiclass": "one-vs-rest ROC AUC"}
    assert check.details.score == score[task] and check.why.startswith(
        f"no feature predicts the label alone: the strongest, 'feed', has {score[task]} {feed.roc_auc:.4f} < 0.97 "
        f"on the 4,000 training rows ({feed.validation_roc_auc:.4f} on the 1,000 validation rows)")
    warning = check.details.out_of_time
    assert warning.flagged and [row.feature for row in warning.collapsed] == ["feed"]
    assert check.passed  # the warning does not block
