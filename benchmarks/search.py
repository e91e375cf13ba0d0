"""The declared hyper-parameter search's cost in the platform against the same trials run by hand with Optuna and
LightGBM on the same matrices, with each side's peak memory.

Both sides start from the snapshot of `flight_delay_search` (model_specs) that a demo run wrote, and run its 24
trials in a child process of their own (peak RSS from wait4):
- platform: `training.fit.train_model` as the model asset runs it, through a registry in memory holding only that
  snapshot: the search (Optuna TPESampler, each trial through `training.algorithms.train`, judged in money by the
  evaluation's `decisions.choose`), the chosen model stored, the card written;
- by hand: the training and validation matrices encoded once, then an Optuna study with the same sampler, seed,
  space and first trial, each trial `lightgbm.train` with early stopping on validation, `predict`, and the best
  threshold's money computed with numpy from the snapshot's money columns.
The hand side is the floor: the platform also encodes the matrices once per search, but judges each trial with
the evaluation's own decision code, keeps the best model and records every trial. Both must find the same trial values, or the comparison is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (copy_project, edit_yaml, machine, project_environment, require_success,
                               run_child)

MODEL = "flight_delay_search"
TARGET = 1.15  # the platform's search within 15% of the hand-run one
CLI = "import sys; from ml_platform.cli import main; sys.exit(main(sys.argv[1:]))"


def prepare(project: Path) -> None:
    """Run the example's chain once with a one-trial search, so that the project holds its snapshot."""
    specs = project / "model_specs" / f"{MODEL}.yaml"
    original = specs.read_text()
    edit_yaml(specs, lambda document: document["algorithm"]["search"].update(trials=1))
    require_success(run_child([sys.executable, "-c", CLI, "--project", str(project), "demo", "--model", MODEL,
                               "--score-days", "1"], project_environment(project)), "ml-platform demo")
    specs.write_text(original)  # the 24 trials of the example, measured below


def _snapshot(project: Path, trials: int | None = None):
    from ml_platform.features.library import load_catalog
    from ml_platform.project import Project
    from ml_platform.storage.warehouse import open_warehouse

    paths = Project.at(project)
    catalog = load_catalog(paths.specs_dir, paths.root)
    with open_warehouse(paths.storage.warehouse) as connection:
        row = connection.execute("SELECT training_run FROM registry.snapshots WHERE model = ? ORDER BY created_at "
                                 "DESC LIMIT 1", [MODEL]).fetchone()
        from ml_platform.storage import registry
        snapshot = registry.snapshots.get(connection, MODEL, row[0])
    model = catalog.models[MODEL]
    if trials is not None:  # fewer trials, no time budget: the same first trials on both sides
        search = model.algorithm.search.model_copy(update={"trials": trials, "time_budget_seconds": None})
        model = model.model_copy(update={"algorithm": model.algorithm.model_copy(update={"search": search})})
    return paths, catalog, model, snapshot


def platform_side(project: Path, trials: int | None = None) -> dict:
    """The platform's search: train_model with the evaluation's judge, into a private store."""
    import duckdb

    from ml_platform.evaluation.search_objective import search_judge
    from ml_platform.storage import registry
    from ml_platform.storage.artifacts import ArtifactStore
    from ml_platform.storage.warehouse import prepare as prepare_registry
    from ml_platform.training.fit import train_model

    paths, catalog, model, snapshot = _snapshot(project, trials)
    with tempfile.TemporaryDirectory(prefix="ml_platform-bench-search-") as scratch:
        link = Path(scratch) / snapshot.path
        link.parent.mkdir(parents=True)
        link.symlink_to(paths.storage.artifacts / snapshot.path)
        with duckdb.connect() as memory:
            prepare_registry(memory)
            registry.snapshots.add(memory, snapshot)
            started = time.perf_counter()
            record = train_model(memory, ArtifactStore(root=scratch), catalog, model, snapshot.training_run,
                                 judge=search_judge).record
            seconds = time.perf_counter() - started
    search = record.card.search
    return {"seconds": seconds, "search_seconds": search.seconds, "trials": len(search.trials),
            "values": [trial.value for trial in search.trials], "best_trial": search.best_trial}


def hand_side(project: Path, trials: int | None = None) -> dict:
    """The same trials by hand: matrices encoded once, Optuna + LightGBM, money with numpy."""
    import duckdb
    import lightgbm
    import numpy as np
    import optuna

    from ml_platform.specs.search import searched
    from ml_platform.training.algorithms import FeatureLayout, lightgbm_parameters
    from ml_platform.training.search import suggest
    from ml_platform.training.fit import categorical_features

    paths, catalog, model, snapshot = _snapshot(project, trials)
    started = time.perf_counter()
    with duckdb.connect() as connection:
        frame = connection.execute(f"SELECT * FROM read_parquet('{paths.storage.artifacts / snapshot.path}') "
                                   f"WHERE split IN ('train', 'validation')").df()
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "validation"]
    layout = FeatureLayout.learn(train, list(model.features), categorical_features(catalog, model))
    train_matrix, valid_matrix = layout.matrix(train), layout.matrix(valid)
    train_label, valid_label = train["label"].astype(int).to_numpy(), valid["label"].astype(bool).to_numpy()
    gain = np.where(valid_label, valid["money_true_positive"], valid["money_false_positive"]) - \
        np.where(valid_label, valid["money_false_negative"], valid["money_true_negative"])
    base = float(np.where(valid_label, valid["money_false_negative"], valid["money_true_negative"]).sum())
    categorical = [index for index, name in enumerate(layout.columns) if name in layout.categories]
    search = model.algorithm.search
    spec = model.algorithm.params
    space = searched(search.parameters)

    def money(scores: np.ndarray) -> float:
        # the same decision as the platform's: the best of a fine grid of thresholds and the scores' quantiles
        thresholds = np.unique(np.concatenate([np.linspace(0.0, 1.0, 201),
                                               np.quantile(scores, np.linspace(0.0, 1.0, 401)),
                                               [np.nextafter(1.0, 2.0)]]))
        order = np.argsort(-scores, kind="stable")
        totals = base + np.concatenate([[0.0], np.cumsum(gain[order])])
        return float(totals[np.searchsorted(-scores[order], -thresholds, side="right")].max())

    def objective(trial) -> float:
        values = {name: suggest(trial, type(spec), name, parameter) for name, parameter in space.items()}
        algorithm = model.algorithm.model_copy(update={"params": spec.model_copy(update=values)})
        params = lightgbm_parameters(algorithm)
        train_set = lightgbm.Dataset(train_matrix, label=train_label, feature_name=list(layout.columns),
                                     categorical_feature=categorical, params=params, free_raw_data=False)
        valid_set = lightgbm.Dataset(valid_matrix, label=valid_label.astype(int), reference=train_set)
        booster = lightgbm.train(params, train_set, num_boost_round=spec.n_estimators, valid_sets=[valid_set],
                                 callbacks=[lightgbm.early_stopping(spec.early_stopping_rounds, verbose=False)])
        return money(booster.predict(valid_matrix, num_iteration=booster.best_iteration or None))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=search.seed))
    study.enqueue_trial({name: getattr(spec, name) for name in space})  # trial 0: the spec params, as the platform does
    searching = time.perf_counter()
    study.optimize(objective, n_trials=search.trials)
    ended = time.perf_counter()
    return {"seconds": ended - started, "search_seconds": ended - searching, "trials": len(study.trials),
            "values": [trial.value for trial in study.trials], "best_trial": study.best_trial.number}


def run(project_folder: Path | None, trials: int | None = None) -> dict:
    """Prepare a project (or use one already prepared), then measure each side in its own child process."""
    with tempfile.TemporaryDirectory(prefix="ml_platform-bench-search-") as folder:
        project = project_folder or copy_project(Path(folder))
        if project_folder is None:
            prepare(project)
        result = {}
        for side in ("hand", "platform"):
            child = require_success(run_child([sys.executable, "-m", "benchmarks.search", "--child", side,
                                               "--project", str(project),
                                               *(["--trials", str(trials)] if trials else [])],
                                              project_environment(project)),
                                    f"the {side} search")
            result[side] = {**json.loads(child.stdout.strip().splitlines()[-1]), "wall_seconds": child.seconds,
                            "peak_mb": child.peak_mb}
        return result


def report(result: dict) -> str:
    """The figures as markdown."""
    hand, platform = result["hand"], result["platform"]
    same = all(abs(a - b) <= 1e-6 * max(1.0, abs(a)) for a, b in zip(hand["values"], platform["values"])) and \
        len(hand["values"]) == len(platform["values"])
    ratio = platform["search_seconds"] / hand["search_seconds"]
    lines = [f"{platform['trials']} trials of `{MODEL}` (Optuna TPE, seed as the spec), LightGBM 2 threads.", "",
             "| side | search seconds | whole child (s) | peak RSS (MB) | best trial |", "|---|---|---|---|---|",
             f"| by hand: Optuna + LightGBM on matrices encoded once | {hand['search_seconds']:.1f} | "
             f"{hand['wall_seconds']:.1f} | {hand['peak_mb']:,.0f} | {hand['best_trial']} |",
             f"| platform: train_model (search, chosen model stored, card) | {platform['search_seconds']:.1f} | "
             f"{platform['wall_seconds']:.1f} | {platform['peak_mb']:,.0f} | {platform['best_trial']} |", "",
             f"Same trial values on both sides: {'yes' if same else 'NO'}. **Platform / hand search time: "
             f"{ratio:.2f}x** (target at most {TARGET:.2f}x: {'met' if ratio <= TARGET else 'NOT met'})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks search", description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a project already prepared (its demo of the example ran)")
    parser.add_argument("--trials", type=int, help="run this many trials instead of the spec's (no time budget)")
    parser.add_argument("--child", choices=("hand", "platform"), help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        side = hand_side if arguments.child == "hand" else platform_side
        print(json.dumps(side(arguments.project, arguments.trials)))
        return
    print(report(run(arguments.project, arguments.trials)))
    print(machine())


if __name__ == "__main__":
    main()
