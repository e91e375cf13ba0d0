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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

from ml_platform.progress import Progress, silent
from ml_platform.errors import PlatformError
from ml_platform.specs.models import (
    HistGradientBoostingAlgorithm,
    LabelSpec,
    LightGBMAlgorithm,
    LogisticRegressionAlgorithm,
    RandomForestAlgorithm,
)

LIGHTGBM_FORMAT = "ml_platform.lightgbm.v1"
SKLEARN_FORMAT = "ml_platform.sklearn-joblib.v1"
THREADS = 2  # fixed, so that the same data and seed give the same model on any machine


class LabelError(PlatformError, ValueError):
    """The labels of the training rows cannot train the spec's task."""


class Rows(Protocol):
    """One split's rows for training: their labels (0/1, numbers or class text), and each input column read when
    asked (not kept)."""

    label: np.ndarray

    def column(self, name: str) -> pd.Series:
        ...


@dataclass(frozen=True)
class FrameRows:
    """Rows given as a frame in memory and their labels (the tests and benchmarks train on these; the platform's
    steps read a snapshot's SplitRows)."""

    frame: pd.DataFrame
    label: np.ndarray

    def column(self, name: str) -> pd.Series:
        return self.frame[name]


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
    """A trained model: binary, the probability of the positive class; regression, the predicted number;
    multiclass, a row per input row of each class's probability (in the spec's order of classes)."""

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
        return self.predict_matrix(self.layout.matrix(frame))

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """The predictions of rows already encoded by this predictor's layout."""
        return self.booster.predict(matrix, num_threads=THREADS)

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
        inputs = self.layout.raw(frame)
        if not hasattr(self.pipeline, "predict_proba"):  # a regressor
            return self.pipeline.predict(inputs)
        probabilities = self.pipeline.predict_proba(inputs)
        return probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities

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


@dataclass(frozen=True)
class _Targets:
    """Rows whose labels are the learner's targets (class positions, numbers), their columns read as before."""

    rows: Rows
    label: np.ndarray

    def column(self, name: str) -> pd.Series:
        return self.rows.column(name)

    @property
    def record_batches(self):
        """The wrapped rows' reader of Arrow record batches, or None when they have none (training.arrow_matrix)."""
        return getattr(self.rows, "record_batches", None)


def targets(label: LabelSpec | None, values: np.ndarray, split: str) -> np.ndarray:
    """The learner's targets of a split's labels: 0/1 (binary), float64 (regression) or each class's position in
    the spec's classes (multiclass; a value that is not a declared class is an error naming it)."""
    if label is None or label.task == "binary_classification":
        return values
    if label.task == "regression":
        numbers = np.asarray(values, dtype="float64")
        if not np.isfinite(numbers).all():
            raise LabelError(f"the {split} rows have {int((~np.isfinite(numbers)).sum())} label(s) that are not "
                             f"finite numbers (label.expression)")
        return numbers
    return class_positions(label.classes, values, split)


def class_positions(classes: Sequence[str], values: np.ndarray, split: str) -> np.ndarray:
    """Each multiclass label's position in the spec's classes (a value that is not a declared class is an error
    naming it)."""
    text = pd.Series(values, dtype="string")
    positions = pd.Index(list(classes), dtype="string").get_indexer(text)
    if (positions < 0).any():
        unknown = sorted(set(text[positions < 0].astype(str)))
        raise LabelError(f"the {split} rows have label value(s) {', '.join(map(repr, unknown[:5]))} that "
                         f"label.classes does not list (allowed: {', '.join(classes)})")
    return positions.astype("int64")


def train(algorithm, columns: list[str], categorical: list[str], train_rows: Rows,
          valid_rows: Rows, progress: Progress | None = None, label: LabelSpec | None = None) -> TrainingResult:
    """Train the spec's algorithm on the training rows, using the validation rows for early stopping; the feature
    layout (column order, category vocabularies) is learnt from the training rows. `label` is the spec's label
    (binary classification when None). `progress` hears of LightGBM's rounds every few seconds (nothing changes
    what is learnt)."""
    progress = progress if progress is not None else silent()
    started = time.perf_counter()
    if label is not None and label.task != "binary_classification":
        train_rows = _Targets(train_rows, targets(label, train_rows.label, "train"))
        valid_rows = _Targets(valid_rows, targets(label, valid_rows.label, "validation"))
    if isinstance(algorithm, LightGBMAlgorithm):
        result = _train_lightgbm(algorithm, columns, categorical, train_rows, valid_rows, progress, label)
    else:
        result = _train_sklearn(algorithm, columns, categorical, train_rows, valid_rows, label)
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


# the spec's regression objective -> LightGBM's objective (its default metric has the same name)
LIGHTGBM_OBJECTIVES = {"l2": "regression", "l1": "regression_l1", "huber": "huber", "poisson": "poisson",
                       "tweedie": "tweedie", "quantile": "quantile"}


def lightgbm_parameters(algorithm: LightGBMAlgorithm, label: LabelSpec | None = None,
                        threads: int = THREADS) -> dict[str, Any]:
    """LightGBM's parameters for the spec's algorithm and task: its hyper-parameters, seed, the task's objective and
    metric, and a fixed deterministic setup (`threads` below THREADS only for a search's concurrent trials: the
    model's bytes depend on the number of threads)."""
    params = algorithm.params
    parameters = {
        "objective": "binary", "metric": "binary_logloss", "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves, "max_depth": params.max_depth,
        "min_child_samples": params.min_child_samples, "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction, "bagging_freq": params.bagging_freq,
        "lambda_l2": params.reg_lambda, "seed": algorithm.seed, "deterministic": True, "force_col_wise": True,
        "num_threads": threads, "verbosity": -1,
    }
    if label is not None and label.task == "multiclass":
        parameters.update(objective="multiclass", metric="multi_logloss", num_class=len(label.classes))
    elif label is not None and label.task == "regression":
        objective = label.objective_kind()
        parameters.update(objective=LIGHTGBM_OBJECTIVES[objective], metric=LIGHTGBM_OBJECTIVES[objective])
        if objective in ("huber", "quantile") and label.objective.parameter() is not None:
            parameters["alpha"] = label.objective.parameter()  # LightGBM's alpha is huber's delta too
        if objective == "tweedie" and label.objective.variance_power is not None:
            parameters["tweedie_variance_power"] = label.objective.variance_power
    return parameters


def _train_lightgbm(algorithm: LightGBMAlgorithm, columns: list[str], categorical: list[str], train_rows: Rows,
                    valid_rows: Rows, progress: Progress, label: LabelSpec | None) -> TrainingResult:
    from ml_platform.training.arrow_matrix import rows_matrix, training_matrix

    # LightGBM reads the encoded values as Arrow columns (no matrix written; the same Dataset, bin for bin)
    layout, matrix = training_matrix(train_rows, columns, categorical, as_arrow=True)
    # the encoded values, referenced only by the Dataset, are freed before the validation rows are read
    train_set = lightgbm_train_set(algorithm, label, layout, matrix, train_rows.label)
    del matrix
    valid_matrix = rows_matrix(layout, valid_rows, as_arrow=True)
    return fit_lightgbm(algorithm, label, layout, train_set, valid_matrix, valid_rows.label, progress)


def lightgbm_train_set(algorithm: LightGBMAlgorithm, label: LabelSpec | None, layout: FeatureLayout,
                        matrix: np.ndarray | pa.Table, train_label: np.ndarray, threads: int = THREADS):
    """The training rows' LightGBM Dataset, constructed now with the training parameters (lightgbm.train would
    build it with the same ones, to the same bins); `matrix` the encoded rows, or their values as Arrow columns
    (arrow_matrix.layout_columns: the same Dataset, bin for bin)."""
    import lightgbm

    train_set = lightgbm.Dataset(matrix, label=train_label, feature_name=list(layout.columns),
                                 categorical_feature=[index for index, name in enumerate(layout.columns)
                                                      if name in layout.categories],
                                 params=lightgbm_parameters(algorithm, label, threads), free_raw_data=True)
    return train_set.construct()


def fit_lightgbm(algorithm: LightGBMAlgorithm, label: LabelSpec | None, layout: FeatureLayout, train_set,
                  valid_matrix: np.ndarray | pa.Table, valid_label: np.ndarray, progress: Progress,
                  threads: int = THREADS) -> TrainingResult:
    """Boost on a constructed training Dataset with early stopping on the validation matrix."""
    import lightgbm

    params = algorithm.params
    valid_set = lightgbm.Dataset(valid_matrix, label=valid_label, reference=train_set)
    callbacks = [_rounds_callback(progress, params.n_estimators)]
    if params.early_stopping_rounds:
        callbacks.append(lightgbm.early_stopping(params.early_stopping_rounds, verbose=False))
    booster = lightgbm.train(lightgbm_parameters(algorithm, label, threads), train_set, num_boost_round=params.n_estimators,
                             valid_sets=[valid_set], valid_names=["validation"], callbacks=callbacks)
    if booster.best_iteration and booster.best_iteration < booster.current_iteration():
        booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    gains = booster.feature_importance(importance_type="gain")
    importance = {name: float(gain) for name, gain in zip(layout.columns, gains)}
    details = {"trees": booster.current_iteration(), "stopped_early": booster.current_iteration() < params.n_estimators,
               "feature_importance": importance, "importance_kind": "total gain",
               "library": {"lightgbm": lightgbm.__version__}}
    return TrainingResult(LightGBMPredictor(booster, layout), details)


# the spec's regression objective -> scikit-learn's loss (HistGradientBoostingRegressor) or criterion (random forest)
SKLEARN_LOSSES = {"l2": "squared_error", "l1": "absolute_error", "poisson": "poisson", "quantile": "quantile"}


def _sklearn_pipeline(algorithm, layout: FeatureLayout, label: LabelSpec | None = None):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
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
        if label is not None and label.task == "regression":
            raise ValueError("logistic_regression does not learn task regression")  # the spec checks refuse it
        numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
        categorical = make_pipeline(as_text, OneHotEncoder(categories=vocabulary, handle_unknown="ignore"))
        estimator = LogisticRegression(random_state=algorithm.seed, **params)
    else:
        numeric = "passthrough"
        categorical = make_pipeline(as_text, OrdinalEncoder(categories=vocabulary, handle_unknown="use_encoded_value",
                                                             unknown_value=np.nan, encoded_missing_value=np.nan))
        regression = label is not None and label.task == "regression"
        loss = SKLEARN_LOSSES.get(label.objective_kind()) if regression else None
        if isinstance(algorithm, RandomForestAlgorithm) and regression:
            estimator = RandomForestRegressor(random_state=algorithm.seed, n_jobs=THREADS, criterion=loss, **params)
        elif isinstance(algorithm, RandomForestAlgorithm):
            estimator = RandomForestClassifier(random_state=algorithm.seed, n_jobs=THREADS, **params)
        elif isinstance(algorithm, HistGradientBoostingAlgorithm):
            options = dict(random_state=algorithm.seed, early_stopping=True, n_iter_no_change=20,
                           categorical_features=[len(numbers) + index for index in range(len(categories))], **params)
            if regression and loss == "quantile":
                options["quantile"] = label.objective.alpha
            estimator = HistGradientBoostingRegressor(loss=loss, **options) if regression else \
                HistGradientBoostingClassifier(**options)
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
                   valid_rows: Rows, label: LabelSpec | None) -> TrainingResult:
    import sklearn
    from threadpoolctl import threadpool_limits

    train_frame = pd.DataFrame({name: train_rows.column(name) for name in columns})
    train_label = train_rows.label
    layout = FeatureLayout.learn(train_frame, columns, categorical)
    pipeline = _sklearn_pipeline(algorithm, layout, label)
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
        # one row of coefficients per class for multiclass (one in all for binary): their mean absolute size
        details["feature_importance"] = dict(zip(names, map(float, np.abs(estimator.coef_).mean(axis=0))))
        details["importance_kind"] = "absolute standardised coefficient"
    if hasattr(estimator, "n_iter_"):
        details["iterations"] = int(np.max(estimator.n_iter_))
    return TrainingResult(SklearnPredictor(pipeline, layout), details)
