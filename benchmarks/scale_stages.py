"""One stage of the scale benchmark, run in its own process so that its peak memory is its own.

    python -m benchmarks.scale_stages STAGE PROJECT [--start DAY --end DAY]

Platform stages over the daily partitions, `sources` and `features`, invoke the platform's own asset bodies
directly on the whole range (no Dagster run, hence no per-partition event records); `scoring` calls the
predictions asset's scoring code (`score_days`) on the whole range. `snapshot`, `training` and `evaluation`
(with deployment) run the platform's training job in the project's instance, as `ml-platform demo` does.
`features-dagster` runs the feature assets through a Dagster run instead, on a window of days, to measure what
Dagster's per-partition records cost beside `features` on the same window.
Bare stages do the same work with DuckDB and LightGBM alone: `bare-features` (each feature set's SQL over the
whole range), `bare-training` (lightgbm.train on the snapshot's matrix) and `bare-predict` (booster.predict on
the scored rows). Prints one JSON line: the seconds of the stage's work, and what it did.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path

MODEL = "flight_delay"


def _context(project: Path):
    os.environ["DAGSTER_HOME"] = str(project / ".dagster_home")
    from ml_platform.chain.instance import prepare_instance
    from ml_platform.chain.runner import Chain
    from ml_platform.project import Project
    from ml_platform.features.library import load_catalog

    paths = Project.at(project)
    prepare_instance(paths)
    catalog = load_catalog(paths.specs_dir, paths.root)
    return paths, catalog, Chain(paths, catalog, say=lambda line: None)


def _run(chain, job: str, **options) -> dict:
    outcome = chain.run(job, job, **options)
    if not outcome.success:
        raise SystemExit(f"{job} failed: {outcome.failures}")
    return {"seconds": outcome.seconds, "dagster_runs": 1}


def platform_stage(stage: str, project: Path) -> dict:
    """Run one training-run stage through the platform's training job; the seconds of its Dagster run."""
    from ml_platform.names import training_job_name
    from ml_platform.names import stage_key
    from ml_platform.storage import registry
    from ml_platform.storage.warehouse import open_warehouse

    paths, catalog, chain = _context(project)
    model = catalog.models[MODEL]
    key = chain.add_training_run(MODEL)
    assets = {"snapshot": ["snapshot"], "training": ["model"], "evaluation": ["evaluation", "deployment"]}[stage]
    result = {**_run(chain, training_job_name(MODEL), partition_key=key,
                     assets=[stage_key(name, model.name) for name in assets]), "training_run": key}
    if stage == "training":
        with open_warehouse(paths.storage.warehouse) as connection:
            card = registry.models.get(connection, MODEL, key).card
        result.update(trees=card.trees, rows=card.training_rows)
    return result


def _invoke(asset, resources: dict, start: dt.date, end: dt.date) -> None:
    """Call an asset's own function as one Dagster run over [start, end] would, without a run or its records.

    The context holds what the platform's asset bodies read: the partition range and its keys, a logger.
    """
    import logging
    from types import SimpleNamespace

    import dagster as dg

    keys = [day.isoformat() for day in (start + dt.timedelta(days=offset) for offset in range((end - start).days + 1))]
    context = SimpleNamespace(partition_key_range=dg.PartitionKeyRange(keys[0], keys[-1]), partition_keys=keys,
                              log=logging.getLogger("scale-benchmark"), run=SimpleNamespace(run_id="scale-benchmark"))
    needed = {key: resources[key] for key in asset.required_resource_keys if key in resources}
    output = asset.op.compute_fn.decorated_fn(context, **needed)
    if output is not None and not isinstance(output, dg.MaterializeResult):
        list(output)  # a generator body (sources): run it to its end


def daily_stage(stage: str, project: Path, start: dt.date, end: dt.date) -> dict:
    """The source or feature asset bodies, invoked directly over [start, end] (reference sources whole)."""
    import warnings

    import dagster as dg

    from ml_platform.build import build_assets
    from ml_platform.storage.resources import build_resources

    paths, catalog, _ = _context(project)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        assets = {asset.key.to_user_string(): asset for asset in build_assets(catalog)}
    if stage == "sources":
        names = [f"source/{name}" for name, source in catalog.sources.items() if not source.is_daily]
        names += [f"source/{name}" for name, source in catalog.sources.items() if source.is_daily]
    else:
        names = [f"features/{feature_set.name}" for feature_set in _in_dependency_order(catalog)]
    resources = build_resources(paths.storage)
    started = time.perf_counter()
    for name in names:
        _invoke(assets[name], resources, start, end)
    return {"seconds": time.perf_counter() - started, "assets": len(names), "partitions": (end - start).days + 1}


def features_dagster(project: Path, start: dt.date, end: dt.date) -> dict:
    """The feature assets over [start, end] through one Dagster run of the daily job, as the demo launches it."""
    from ml_platform.names import DAILY_JOB
    from ml_platform.names import feature_key

    _, catalog, chain = _context(project)
    return {**_run(chain, DAILY_JOB, date_range=(start, end),
                   assets=[feature_key(feature_set.name) for feature_set in _in_dependency_order(catalog)]),
            "partitions": (end - start).days + 1}


def scoring(project: Path, start: dt.date, end: dt.date) -> dict:
    """The predictions asset's scoring code (score_days) with the champion over [start, end]."""
    from ml_platform.scoring.score import score_days
    from ml_platform.storage.artifacts import ArtifactStore
    from ml_platform.storage.warehouse import open_warehouse

    paths, catalog, _ = _context(project)
    artifacts = ArtifactStore(root=str(paths.storage.artifacts))
    started = time.perf_counter()
    with open_warehouse(paths.storage.warehouse) as connection:
        result = score_days(connection, artifacts, catalog, catalog.models[MODEL], start, end, "scale-benchmark")
    return {"seconds": time.perf_counter() - started, "rows": result.rows, "partitions": (end - start).days + 1}


def monitoring(project: Path, start: dt.date, end: dt.date) -> dict:
    """The monitoring asset's drift code (measure_drift) over [start, end] with the champion, as a daily run
    measures its days: the champion's reference (its snapshot's bins, stored by its evaluation step, read back),
    the scored rows of the days and their windows."""
    from ml_platform.monitoring.drift import measure_drift
    from ml_platform.storage.artifacts import ArtifactStore
    from ml_platform.storage.warehouse import open_warehouse

    paths, catalog, _ = _context(project)
    artifacts = ArtifactStore(root=str(paths.storage.artifacts))
    started = time.perf_counter()
    with open_warehouse(paths.storage.warehouse) as connection:
        drift = measure_drift(connection, artifacts, catalog.models[MODEL], start, end, "scale-benchmark")
    return {"seconds": time.perf_counter() - started, "partitions": (end - start).days + 1,
            "max_feature_psi": drift.feature_psi, "score_psi": drift.score_psi}


def _in_dependency_order(catalog) -> list:
    """The feature sets of the benchmarked model's entity (the example models' other entities are not scaled), each
    after the sets it uses."""
    entity = catalog.models[MODEL].entity
    sets = {name: feature_set for name, feature_set in catalog.feature_sets.items() if feature_set.entity == entity}
    done, order = set(), []
    while len(order) < len(sets):
        for name, feature_set in sorted(sets.items()):
            if name not in done and set(feature_set.uses) <= done:
                done.add(name)
                order.append(feature_set)
    return order


def bare_features(project: Path, start: dt.date, end: dt.date) -> dict:
    """Each feature set's SQL run once over the whole range, straight in DuckDB (on a copy of the warehouse)."""
    import duckdb

    from ml_platform.features.functions import REGISTRY

    paths, catalog, _ = _context(project)
    connection = duckdb.connect(str(paths.storage.warehouse))
    connection.execute("SET search_path = 'source,features,main'")
    started = time.perf_counter()
    for name in {name for feature_set in catalog.feature_sets.values() for name in feature_set.functions}:
        function = REGISTRY[name]
        connection.create_function(name, function.function, list(function.parameters), function.returns)
    connection.execute(f"CREATE TEMP VIEW entity AS SELECT * FROM source.flights "
                       f"WHERE partition_date BETWEEN DATE '{start}' AND DATE '{end}'")
    for name in catalog.sources:  # earlier outcomes, for windows over past events
        connection.execute(f"CREATE OR REPLACE VIEW history.{name} AS SELECT * FROM source.{name}")
    rows = 0
    for feature_set in _in_dependency_order(catalog):
        connection.execute(f"CREATE TEMP TABLE bare_{feature_set.name} AS {feature_set.sql}")
        rows += connection.execute(f"SELECT count(*) FROM bare_{feature_set.name}").fetchall()[0][0]
    seconds = time.perf_counter() - started
    connection.close()
    return {"seconds": seconds, "rows": rows}


def _training_matrix(paths, catalog):
    """The champion-to-be's snapshot rows, encoded exactly as the platform encodes them (not timed)."""
    import duckdb

    from ml_platform.storage import registry
    from ml_platform.storage.warehouse import open_warehouse
    from ml_platform.training.algorithms import FeatureLayout
    from ml_platform.training.fit import categorical_features

    model = catalog.models[MODEL]
    with open_warehouse(paths.storage.warehouse) as connection:
        snapshot = registry.snapshots.all(connection, model=MODEL)[-1]
    columns = ", ".join(["split", "label", *model.features])
    frame = duckdb.connect().execute(
        f"SELECT {columns} FROM read_parquet('{paths.storage.artifacts / snapshot.path}')").df()
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "validation"]
    layout = FeatureLayout.learn(train, list(model.features), categorical_features(catalog, model))
    return model, layout, (layout.encode(train).to_numpy(), train["label"].astype(int).to_numpy(),
                           layout.encode(valid).to_numpy(), valid["label"].astype(int).to_numpy())


def bare_training(project: Path) -> dict:
    """lightgbm.train with the spec's parameters on the snapshot's encoded matrix (the same as the platform's)."""
    import lightgbm

    paths, catalog, _ = _context(project)
    model, layout, (train_x, train_y, valid_x, valid_y) = _training_matrix(paths, catalog)
    params = model.algorithm.params
    booster_params = {
        "objective": "binary", "metric": "binary_logloss", "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves, "max_depth": params.max_depth,
        "min_child_samples": params.min_child_samples, "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction, "bagging_freq": params.bagging_freq,
        "lambda_l2": params.reg_lambda, "seed": model.algorithm.seed, "deterministic": True, "force_col_wise": True,
        "num_threads": 2, "verbosity": -1,
    }
    categorical = [index for index, name in enumerate(layout.columns) if name in layout.categories]
    started = time.perf_counter()
    train_set = lightgbm.Dataset(train_x, label=train_y, feature_name=list(layout.columns),
                                 categorical_feature=categorical)
    valid_set = lightgbm.Dataset(valid_x, label=valid_y, reference=train_set)
    booster = lightgbm.train(booster_params, train_set, num_boost_round=params.n_estimators, valid_sets=[valid_set],
                             callbacks=[lightgbm.early_stopping(params.early_stopping_rounds, verbose=False)])
    return {"seconds": time.perf_counter() - started, "rows": len(train_y), "trees": booster.current_iteration()}


def bare_predict(project: Path, start: dt.date, end: dt.date) -> dict:
    """booster.predict of the champion on the encoded rows of [start, end] (matrix built first, not timed).

    The matrix is joined and encoded a range of days at a time (as snapshots are written): the warehouse's capped
    DuckDB cannot join the whole range's features at once, and a frame of every row would dwarf predict's memory.
    """
    import numpy as np

    from ml_platform.features.compute import day_ranges, feature_matrix_sql
    from ml_platform.scoring.score import BATCH_ROWS
    from ml_platform.training.inference import trained_spec
    from ml_platform.storage import registry
    from ml_platform.storage.artifacts import ArtifactStore
    from ml_platform.storage.warehouse import open_warehouse
    from ml_platform.training.fit import load_model

    paths, catalog, _ = _context(project)
    artifacts = ArtifactStore(root=str(paths.storage.artifacts))
    with open_warehouse(paths.storage.warehouse) as connection:
        champion = registry.promotions.champion(connection, MODEL)
        model_row = registry.models.by_version(connection, champion.model_version)
        spec = trained_spec(connection, catalog, model_row)
        predictor = load_model(artifacts, model_row)
        parts = [predictor.layout.matrix(connection.execute(
                     feature_matrix_sql(catalog, spec, first, last, with_outcomes=False)).df())
                 for first, last in day_ranges(connection, catalog, spec.entity, start, end, BATCH_ROWS)]
    matrix = np.empty((sum(len(part) for part in parts), len(predictor.layout.columns)), order="F")
    offset = 0
    while parts:  # column-major, as the platform's batches are, without holding two copies of every part
        part = parts.pop(0)
        matrix[offset:offset + len(part)] = part
        offset += len(part)
    started = time.perf_counter()
    predictor.booster.predict(matrix, num_threads=2)
    return {"seconds": time.perf_counter() - started, "rows": len(matrix)}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage")
    parser.add_argument("project", type=Path)
    parser.add_argument("--start", type=dt.date.fromisoformat)
    parser.add_argument("--end", type=dt.date.fromisoformat)
    arguments = parser.parse_args()
    stage, project, start, end = arguments.stage, arguments.project, arguments.start, arguments.end
    if stage in ("sources", "features"):
        result = daily_stage(stage, project, start, end)
    elif stage == "features-dagster":
        result = features_dagster(project, start, end)
    elif stage == "scoring":
        result = scoring(project, start, end)
    elif stage == "monitoring":
        result = monitoring(project, start, end)
    elif stage == "bare-features":
        result = bare_features(project, start, end)
    elif stage == "bare-training":
        result = bare_training(project)
    elif stage == "bare-predict":
        result = bare_predict(project, start, end)
    else:
        result = platform_stage(stage, project)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
