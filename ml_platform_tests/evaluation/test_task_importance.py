"""Global importance and dependence plots of regression and multiclass models, for their report: real models
trained on real flights, importance checked against TreeSHAP computed directly."""

from __future__ import annotations

import numpy as np

from ml_platform.evaluation.importance_report import importance_figures, importance_lines
from ml_platform.evaluation.task_importance import multiclass_importance
from ml_platform.evaluation.importance import global_importance
from ml_platform.names import dependence_plot_name
from ml_platform.specs.models import LabelSpec
from ml_platform.training.algorithms import train
from ml_platform.training.attributions import TREE_SHAP, lightgbm_attributions

from ml_platform_tests.flights_sample import CLASSES
from ml_platform_tests.training.test_attributions import CATEGORIES, FEATURES, lightgbm
from ml_platform_tests.training.test_tasks_training import rows_for


def trained(label: LabelSpec):
    train_rows, valid_rows = rows_for(label)
    return train(lightgbm(), FEATURES, CATEGORIES, train_rows, valid_rows, label=label).predictor, valid_rows.frame


def test_multiclass_importance_sums_each_classs_mean_absolute_contribution():
    predictor, test = trained(LabelSpec(task="multiclass", expression="outcome", classes=CLASSES))
    test = test.iloc[:800].reset_index(drop=True)  # below the 1,000-row sample: every row is explained
    result = multiclass_importance(predictor, test, CLASSES)

    assert result.method == TREE_SHAP and result.scale == "class raw score" and result.rows == 800
    expected = sum(np.abs(lightgbm_attributions(predictor, test, position).contributions).mean(axis=0)
                   for position in range(len(CLASSES)))
    got = {item.feature: item.mean_absolute for item in result.features}
    assert np.allclose([got[name] for name in FEATURES], expected, rtol=0, atol=1e-12)
    assert min(got.values()) > 0
    values = [item.mean_absolute for item in result.features]
    assert values == sorted(values, reverse=True) and abs(sum(item.share for item in result.features) - 1) < 1e-9
    assert [points.feature for points in result.dependence] == [item.feature for item in result.features[:3]]
    assert all(points.label_class in CLASSES for points in result.dependence)
    lines = "\n".join(importance_lines(result, {}))
    assert "## Feature importance (test)" in lines
    assert "each class's raw score (before softmax), summed over the classes" in lines
    assert f"| {result.features[0].feature} | {result.features[0].mean_absolute:.4f} |" in lines
    figures = importance_figures(result)
    assert set(figures) == {dependence_plot_name(points.feature) for points in result.dependence}
    title = figures[dependence_plot_name(result.dependence[0].feature)].axes[0].get_title()
    assert f"contribution to class '{result.dependence[0].label_class}'" in title


def test_regression_importance_is_on_the_value_scale():
    predictor, test = trained(LabelSpec(task="regression", expression="air_time"))
    test = test.iloc[:800].reset_index(drop=True)
    result = global_importance(predictor, test, None)

    assert result.scale == "value" and result.rows == 800
    expected = np.abs(lightgbm_attributions(predictor, test).contributions).mean(axis=0)
    got = {item.feature: item.mean_absolute for item in result.features}
    assert np.allclose([got[name] for name in FEATURES], expected, rtol=0, atol=1e-12)
    lines = "\n".join(importance_lines(result, {}))
    assert "Mean |contribution| of each feature over 800 test rows, in the predicted value" in lines
    assert all(points.label_class is None for points in result.dependence)
