"""Deterministic training for the algorithms the spec language allows, and loading of their artifacts.

LightGBM models are stored as JSON holding LightGBM's own text model (no code runs on load). scikit-learn
pipelines are stored with joblib and only ever loaded after the artifact store has verified their SHA-256.
Heavy libraries are imported inside functions so that loading the definitions stays fast.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import pandas as pd

from ml_platform.progress import Progress, silent
from ml_platform.specs.models import (
    HistGradientBoostingAlgorithm,
    LightGBMAlgorithm,
    LogisticRegressionAlgorithm,
    RandomForestAlgorithm,
)

LIGHTGBM_FORMAT = "ml_platform.lightgbm.v1"
SKLEARN_FORMAT = "ml_platform.sklearn-joblib.v1"
THREADS = 2  # fixed, so that the same data and seed give the same model on any machine


class Rows(Protocol):
    """One split's rows for training: their 0/1 labels, and each input column read when asked (not kept)."""

    label: np.ndarray

    def column(self, name: str) -> pd.Series:
        ...


@dataclass(frozen=True)
class FeatureLayout:
    """The model's input columns, in order, and which of them are categories (with their training vocabulary)."""

    columns: tuple[str, ...]
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def learn(cls, frame: pd.DataFrame, columns: list[str], categorical: list[str]) -> "FeatureLayout":
        """Fix the column order and each category's vocabulary from the training rows."""
        return cls(tuple(columns), {name: category_vocabulary(frame[name]) for name in categorical})

    @classmethod
    def learn_and_encode(cls, rows: Rows, columns: list[str],
                         categorical: list[str]) -> tuple["FeatureLayout", np.ndarray]:
        """The layout learnt from the training rows and their matrix, reading each column once."""
        encoded = np.empty((len(rows.label), len(columns)), dtype="float64", order="F")
        categories = {}
        for position, name in enumerate(columns):
            values = rows.column(name)
            if name in categorical:
                categories[name] = category_vocabulary(values)
                encoded[:, position] = category_codes(values, categories[name])
            else:
                encoded[:, position] = as_float(values)
        return cls(tuple(columns), {name: categories[name] for name in categorical}), encoded

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's input matrix (column-major float64): numbers as they are, categories as their code in the
        vocabulary, NaN when missing or unseen."""
        return self.rows_matrix(frame.__getitem__, len(frame))

    def rows_matrix(self, column: Callable[[str], pd.Series], rows: int) -> np.ndarray:
        """The input matrix of `rows` rows whose columns `column(name)` gives, one column at a time."""
        encoded = np.empty((rows, len(self.columns)), dtype="float64", order="F")
        for position, name in enumerate(self.columns):
            values = column(name)
            encoded[:, position] = category_codes(values, self.categories[name]) if name in self.categories \
                else as_float(values)
        return encoded

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The input matrix as a frame with the model's column names."""
        return pd.DataFrame(self.matrix(frame), columns=list(self.columns), index=frame.index)

    def raw(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's columns in order, numbers as float64 with NaN for missing (never pandas.NA)."""
        return pd.DataFrame({name: frame[name] if name in self.categories else as_float(frame[name])
                             for name in self.columns}, index=frame.index)


def category_vocabulary(series: pd.Series) -> list[str]:
    """A category column's distinct values as sorted text (missing values left out)."""
    return sorted(category_text(distinct_values(series)).dropna().unique().tolist())


def as_float(series: pd.Series) -> np.ndarray:
    """A numeric column as float64, missing values as NaN (DuckDB hands nullable integers over as pandas.NA)."""
    return pd.to_numeric(series, errors="raise").to_numpy(dtype="float64", na_value=np.nan)


def distinct_values(series: pd.Series) -> pd.Series:
    """The column's distinct values (missing values dropped), in order of first appearance."""
    return pd.Series(pd.unique(series.dropna()), dtype=series.dtype)


def category_codes(series: pd.Series, vocabulary: list[str]) -> np.ndarray:
    """Each value's position in the vocabulary as float64, NaN when missing or unseen.

    The text of each distinct value is looked up once, not the text of every row: the same codes as
    `pd.Categorical(category_text(series), categories=vocabulary)`, at a fraction of the cost on large columns.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = category_text(pd.Series(uniques, dtype=series.dtype))
    positions = pd.Index(vocabulary, dtype="string").get_indexer(text).astype("float64")
    positions[positions < 0] = np.nan
    return np.where(codes < 0, np.nan, positions[np.maximum(codes, 0)]) if len(positions) else \
        np.full(len(series), np.nan)


def category_text(series: pd.Series) -> pd.Series:
    """Category values as text ("7", not "7.0", even when missing values made the column float); NA stays NA."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_object_dtype(series) or \
            pd.api.types.is_string_dtype(series):
        return series.astype("string")
    return series.astype("Int64").astype("string")


class Predictor:
    """A trained model that gives the probability of the positive class."""

    format: str
    layout: FeatureLayout

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def save(self, path: Path) -> None:
        raise NotImplementedError


class LightGBMPredictor(Predictor):
    """A LightGBM booster with its feature layout."""

    format = LIGHTGBM_FORMAT

    def __init__(self, booster, layout: FeatureLayout):
        self.booster = booster
        self.layout = layout

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(self.layout.matrix(frame), num_threads=THREADS)

    def save(self, path: Path) -> None:
        document = {"format": self.format, "columns": list(self.layout.columns),
                    "categories": self.layout.categories, "booster": self.booster.model_to_string()}
        path.write_text(json.dumps(document, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "LightGBMPredictor":
        import lightgbm

        document = json.loads(path.read_text(encoding="utf-8"))
        layout = FeatureLayout(tuple(document["columns"]), document["categories"])
        return cls(lightgbm.Booster(model_str=document["booster"]), layout)


class SklearnPredictor(Predictor):
    """A scikit-learn pipeline (encoders and estimator) with its feature layout."""

    format = SKLEARN_FORMAT

    def __init__(self, pipeline, layout: FeatureLayout):
        self.pipeline = pipeline
        self.layout = layout

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(self.layout.raw(frame))[:, 1]

    def save(self, path: Path) -> None:
        import joblib

        joblib.dump({"format": self.format, "pipeline": self.pipeline, "columns": list(self.layout.columns),
                     "categories": self.layout.categories}, path)

    @classmethod
    def load(cls, path: Path) -> "SklearnPredictor":
        import joblib

        document = joblib.load(path)  # only called on a file whose SHA-256 the artifact store has verified
        return cls(document["pipeline"], FeatureLayout(tuple(document["columns"]), document["categories"]))


def load_predictor(path: Path, artifact_format: str) -> Predictor:
    """Load a verified model artifact of the given format."""
    if artifact_format == LIGHTGBM_FORMAT:
        return LightGBMPredictor.load(path)
    if artifact_format == SKLEARN_FORMAT:
        return SklearnPredictor.load(path)
    raise ValueError(f"unknown model artifact format {artifact_format!r}")


@dataclass
class TrainingResult:
    """A trained predictor and the facts its model card reports."""

    predictor: Predictor
    details: dict[str, Any]


def train(algorithm, columns: list[str], categorical: list[str], train_rows: Rows,
          valid_rows: Rows, progress: Progress | None = None) -> TrainingResult:
    """Train the spec's algorithm on the training rows, using the validation rows for early stopping; the feature
    layout (column order, category vocabularies) is learnt from the training rows. `progress` hears of LightGBM's
    rounds every few seconds (nothing changes what is learnt)."""
    progress = progress if progress is not None else silent()
    started = time.perf_counter()
    if isinstance(algorithm, LightGBMAlgorithm):
        result = _train_lightgbm(algorithm, columns, categorical, train_rows, valid_rows, progress)
    else:
        result = _train_sklearn(algorithm, columns, categorical, train_rows, valid_rows)
    result.details["training_seconds"] = round(time.perf_counter() - started, 3)
    if progress.lines:  # the wait was long enough to report: say when it ends
        progress.report(f"trained {algorithm.kind} in {time.perf_counter() - started:.1f} s")
    return result


def _rounds_callback(progress: Progress, total: int):
    """A LightGBM callback reporting the round and the validation metric when a progress line is due; it only
    reads the evaluation LightGBM computes anyway for the validation set."""

    def report(env) -> None:
        if not progress.due():
            return
        metrics = ", ".join(f"{data} {metric} {value:.5f}" for data, metric, value, *_ in env.evaluation_result_list)
        progress.report(f"training round {env.iteration + 1} of {total}"
                        + (f" ({metrics})" if metrics else "") + f", {progress.elapsed:.0f} s")

    report.order = 40  # after early stopping's bookkeeping; it never raises
    return report


def lightgbm_parameters(algorithm: LightGBMAlgorithm) -> dict[str, Any]:
    """LightGBM's parameters for the spec's algorithm: its hyper-parameters, seed, and a fixed deterministic setup."""
    params = algorithm.params
    return {
        "objective": "binary", "metric": "binary_logloss", "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves, "max_depth": params.max_depth,
        "min_child_samples": params.min_child_samples, "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction, "bagging_freq": params.bagging_freq,
        "lambda_l2": params.reg_lambda, "seed": algorithm.seed, "deterministic": True, "force_col_wise": True,
        "num_threads": THREADS, "verbosity": -1,
    }


def _train_lightgbm(algorithm: LightGBMAlgorithm, columns: list[str], categorical: list[str], train_rows: Rows,
                    valid_rows: Rows, progress: Progress) -> TrainingResult:
    import lightgbm

    params = algorithm.params
    booster_params = lightgbm_parameters(algorithm)
    layout, matrix = FeatureLayout.learn_and_encode(train_rows, columns, categorical)
    # built now with the training parameters (lightgbm.train would build it with the same ones, to the same bins),
    # so that the float64 matrix, referenced only by the Dataset, is freed before the validation rows are read
    train_set = lightgbm.Dataset(matrix, label=train_rows.label, feature_name=list(layout.columns),
                                 categorical_feature=[index for index, name in enumerate(layout.columns)
                                                      if name in layout.categories],
                                 params=booster_params, free_raw_data=True)
    del matrix
    train_set.construct()
    valid_set = lightgbm.Dataset(layout.rows_matrix(valid_rows.column, len(valid_rows.label)),
                                 label=valid_rows.label, reference=train_set)
    callbacks = [_rounds_callback(progress, params.n_estimators)]
    if params.early_stopping_rounds:
        callbacks.append(lightgbm.early_stopping(params.early_stopping_rounds, verbose=False))
    booster = lightgbm.train(booster_params, train_set, num_boost_round=params.n_estimators,
                             valid_sets=[valid_set], valid_names=["validation"], callbacks=callbacks)
    if booster.best_iteration and booster.best_iteration < booster.current_iteration():
        booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    gains = booster.feature_importance(importance_type="gain")
    importance = {name: float(gain) for name, gain in zip(layout.columns, gains)}
    details = {"trees": booster.current_iteration(), "stopped_early": booster.current_iteration() < params.n_estimators,
               "feature_importance": importance, "importance_kind": "total gain",
               "library": {"lightgbm": lightgbm.__version__}}
    return TrainingResult(LightGBMPredictor(booster, layout), details)


def _sklearn_pipeline(algorithm, layout: FeatureLayout):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numbers = [name for name in layout.columns if name not in layout.categories]
    categories = [name for name in layout.columns if name in layout.categories]
    vocabulary = [layout.categories[name] for name in categories]
    params = algorithm.params.model_dump()
    as_text = _as_text_transformer(categories)
    if isinstance(algorithm, LogisticRegressionAlgorithm):
        numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
        categorical = make_pipeline(as_text, OneHotEncoder(categories=vocabulary, handle_unknown="ignore"))
        estimator = LogisticRegression(random_state=algorithm.seed, **params)
    else:
        numeric = "passthrough"
        categorical = make_pipeline(as_text, OrdinalEncoder(categories=vocabulary, handle_unknown="use_encoded_value",
                                                             unknown_value=np.nan, encoded_missing_value=np.nan))
        if isinstance(algorithm, RandomForestAlgorithm):
            estimator = RandomForestClassifier(random_state=algorithm.seed, n_jobs=THREADS, **params)
        elif isinstance(algorithm, HistGradientBoostingAlgorithm):
            estimator = HistGradientBoostingClassifier(
                random_state=algorithm.seed, early_stopping=True, n_iter_no_change=20,
                categorical_features=[len(numbers) + index for index in range(len(categories))], **params)
        else:
            raise ValueError(f"no trainer for algorithm {algorithm.kind!r}")
    transformer = ColumnTransformer([("numbers", numeric, numbers), ("categories", categorical, categories)],
                                    verbose_feature_names_out=False)
    return Pipeline([("encode", transformer), ("estimator", estimator)])


def _as_text_transformer(categories: list[str]):
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer(_categories_as_text, feature_names_out="one-to-one")


def _categories_as_text(frame: pd.DataFrame):
    """Category values as text, missing values kept missing, so encoders see the vocabulary's types."""
    return pd.DataFrame({name: category_text(frame[name]).astype(object).where(frame[name].notna(), np.nan)
                         for name in frame.columns}, index=frame.index)


def _train_sklearn(algorithm, columns: list[str], categorical: list[str], train_rows: Rows,
                   valid_rows: Rows) -> TrainingResult:
    import sklearn
    from threadpoolctl import threadpool_limits

    train_frame = pd.DataFrame({name: train_rows.column(name) for name in columns})
    train_label = train_rows.label
    layout = FeatureLayout.learn(train_frame, columns, categorical)
    pipeline = _sklearn_pipeline(algorithm, layout)
    with threadpool_limits(limits=THREADS):
        if isinstance(algorithm, HistGradientBoostingAlgorithm):
            encoder = pipeline.named_steps["encode"].fit(layout.raw(train_frame))
            valid_frame = pd.DataFrame({name: valid_rows.column(name) for name in columns})
            pipeline.named_steps["estimator"].fit(
                encoder.transform(layout.raw(train_frame)), train_label,
                X_val=encoder.transform(layout.raw(valid_frame)), y_val=valid_rows.label)
        else:
            pipeline.fit(layout.raw(train_frame), train_label)
    estimator = pipeline.named_steps["estimator"]
    details: dict[str, Any] = {"library": {"scikit-learn": sklearn.__version__}}
    names = list(pipeline.named_steps["encode"].get_feature_names_out())
    if hasattr(estimator, "feature_importances_"):
        details["feature_importance"] = dict(zip(names, map(float, estimator.feature_importances_)))
        details["importance_kind"] = "impurity decrease"
    elif hasattr(estimator, "coef_"):
        details["feature_importance"] = dict(zip(names, map(lambda value: abs(float(value)), estimator.coef_[0])))
        details["importance_kind"] = "absolute standardised coefficient"
    if hasattr(estimator, "n_iter_"):
        details["iterations"] = int(np.max(estimator.n_iter_))
    return TrainingResult(SklearnPredictor(pipeline, layout), details)
