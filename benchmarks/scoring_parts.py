"""Where one scoring batch's seconds go, part by part: DuckDB's staging query (its joins, its sort, its rows into
Arrow), the categories' codes, LightGBM's predict, and DuckDB's write of the stored rows.

Issue #17 asks batch scoring for at least 0.5x (10M rows, 50 trees) and 0.9x (the demo's champion) the throughput of
`booster.predict` alone: everything beside predict may take at most as long as predict, or a ninth of it. This
splits one batch (the largest of the champion's batches: `BATCH_ROWS` rows at most, as `score_days` cuts them) into
the parts scoring runs, each timed on its own, the median of `--repeats`:

- `stage`: the batch's feature query as scoring runs it (`feature_matrix_sql`: the entity rows, a LEFT JOIN per
  feature set, ORDER BY day and keys), into Arrow (`scoring.staging.staged_rows`);
- `stage, unsorted`: the same query without its ORDER BY; `joins only`: its rows counted, not materialized;
- `codes`: the Arrow columns LightGBM reads (`training.arrow_matrix.layout_columns`, the categories' codes);
- `predict`: `booster.predict` of those columns on the platform's threads;
- `write`: the batch's stored rows (keys, day, score, flag, the inputs STRUCT, provenance) inserted, as scoring
  inserts them, into a predictions table of a scratch database file (the project's warehouse is opened read-only
  and left as it is).

Run it on a project with a champion: the scale benchmark's (`python -m benchmarks scale --folder DIR`, then
`--project DIR/project --model flight_delay`) or the demo's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, markdown_table, write_section


def _median(function, repeats: int) -> tuple[float, object]:
    seconds, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def measure(project: Path, model: str, repeats: int) -> dict:
    """Each part's median seconds on the champion's largest batch of `project`."""
    os.environ.setdefault("DAGSTER_HOME", str(project / ".dagster_home"))
    import duckdb

    from ml_platform.features.compute import day_ranges, feature_matrix_sql
    from ml_platform.features.library import load_catalog
    from ml_platform.project import Project
    from ml_platform.scoring.inputs import packed_sql
    from ml_platform.scoring.score import PROVENANCE_TYPES, _output_sql
    from ml_platform.scoring.staging import BATCH_ROWS, staged_rows
    from ml_platform.storage import registry
    from ml_platform.storage.artifacts import ArtifactStore
    from ml_platform.storage.warehouse import SEARCH_PATH
    from ml_platform.training.algorithms import THREADS
    from ml_platform.training.arrow_matrix import layout_columns
    from ml_platform.training.fit import load_model
    from ml_platform.training.inference import trained_spec
    import pyarrow as pa

    paths = Project.at(project)
    catalog = load_catalog(paths.specs_dir, paths.root)
    if not Path(paths.storage.warehouse).is_file():
        raise SystemExit(f"{project} has no warehouse ({paths.storage.warehouse}): run the demo or the scale "
                         f"benchmark there first")
    connection = duckdb.connect(str(paths.storage.warehouse), read_only=True)
    connection.execute(SEARCH_PATH)
    champion = registry.promotions.champion(connection, model)
    if champion is None:
        raise SystemExit(f"{model} has no champion in {project}: run the demo or the scale benchmark first")
    trained = registry.models.by_version(connection, champion.model_version)
    spec = trained_spec(connection, catalog, trained)
    predictor = load_model(ArtifactStore(root=str(paths.storage.artifacts)), trained)
    if not hasattr(predictor, "booster"):
        raise SystemExit(f"{model}'s champion is not a LightGBM model: this benchmark times booster.predict")
    entity = catalog.entity_rows(spec.entity)
    first_day, last_day = connection.execute(
        f"SELECT min(partition_date), max(partition_date) FROM source.{entity.name}").fetchall()[0]
    ranges = day_ranges(connection, catalog, spec.entity, first_day, last_day, BATCH_ROWS)
    counts = [connection.execute(f"SELECT count(*) FROM ({feature_matrix_sql(catalog, spec, a, b, False)})")
              .fetchall()[0][0] for a, b in ranges]
    first, last = ranges[counts.index(max(counts))]
    sql = feature_matrix_sql(catalog, spec, first, last, False)
    unsorted = sql[:sql.rindex(" ORDER BY ")]
    parts: dict[str, float] = {}

    def stage():
        with staged_rows(connection, sql) as staged:
            return staged.table
    parts["stage"], table = _median(stage, repeats)
    parts["stage, unsorted"], _ = _median(lambda: connection.sql(unsorted).to_arrow_table(), repeats)
    parts["joins only"], _ = _median(lambda: connection.sql(f"SELECT count(*) FROM ({unsorted})").fetchall(),
                                     repeats)
    features = table.select(list(spec.features))
    parts["codes"], columns = _median(lambda: layout_columns(predictor.layout, features), repeats)
    parts["predict"], scores = _median(lambda: predictor.booster.predict(columns, num_threads=THREADS), repeats)

    constants = {"model_version": trained.model_version, "spec_hash": trained.spec_hash,
                 "snapshot_id": trained.snapshot_id, "training_run": trained.training_run, "code_version": "bench",
                 "scored_at": dt.datetime(2026, 1, 1), "promotion_id": champion.promotion_id,
                 "dagster_run_id": "scoring-parts"}
    types = {name: PROVENANCE_TYPES[name] for name in constants}
    parameters = [*constants.values(), 0.5]
    with tempfile.TemporaryDirectory() as scratch, staged_rows(connection, sql) as staged:
        staged.add_columns(pa.table({"score": pa.array(scores, type=pa.float64())}))
        connection.execute(f"ATTACH '{Path(scratch) / 'scratch.duckdb'}' AS scratch (READ_WRITE)")
        select = _output_sql(catalog, spec, types, packed_sql(list(spec.features)))
        writes = []
        for round_ in range(repeats):
            target = f"scratch.predictions_{round_}"
            connection.execute(f"CREATE TABLE {target} AS SELECT * FROM ({select}) LIMIT 0", parameters)
            started = time.perf_counter()
            connection.execute("BEGIN")
            connection.execute(f"INSERT INTO {target} BY NAME {select}", parameters)
            connection.execute("COMMIT")
            writes.append(time.perf_counter() - started)
        connection.execute("DETACH scratch")
        parts["write"] = statistics.median(writes)
    connection.close()
    return {"rows": table.num_rows, "range": [str(first), str(last)], "features": len(spec.features),
            "feature_sets": len(catalog.feature_sets_of(spec)), "trees": predictor.booster.num_trees(),
            "parts": parts}


def report(result: dict, project: Path, model: str) -> str:
    """The parts as markdown, with what the targets leave beside predict."""
    parts, rows = result["parts"], result["rows"]
    predict = parts["predict"]
    scoring = parts["stage"] + parts["codes"] + predict + parts["write"]
    table = markdown_table(
        ["part", "seconds", "seconds per million rows", "share of the batch"],
        [[name, f"{seconds:.2f}", f"{seconds / rows * 1e6:.2f}",
          f"{seconds / scoring:.0%}" if name in ("stage", "codes", "predict", "write") else "(within stage)"]
         for name, seconds in parts.items()])
    beside = scoring - predict
    shown = f"{project.parent.name}/{project.name}" if project.name == "project" else project.name
    return (f"One batch of `{model}` (project `{shown}`): {rows:,} rows of {result['range'][0]} to {result['range'][1]}, "
            f"{result['features']} features from {result['feature_sets']} feature sets, {result['trees']} trees; "
            f"medians of the repeats.\n\n{table}\n\n"
            f"- The batch's parts add up to {scoring:.2f} s, a throughput of **{predict / scoring:.2f}x** "
            f"`booster.predict` alone.\n"
            f"- Beside predict: {beside:.2f} s, of which DuckDB's staging query {parts['stage']:.2f} s (its joins "
            f"{parts['joins only']:.2f} s, its sort {parts['stage'] - parts['stage, unsorted']:.2f} s) and its write "
            f"{parts['write']:.2f} s; the categories' codes {parts['codes']:.2f} s. 0.5x leaves {predict:.2f} s "
            f"beside predict, 0.9x leaves {predict / 9:.2f} s.\n")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, action="append", required=True,
                        help="a project folder whose model has a champion (repeat for several, one after another)")
    parser.add_argument("--model", default="flight_delay")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="record the figures in benchmarks/RESULTS.md")
    arguments = parser.parse_args()
    texts = []
    for project in arguments.project:
        texts.append(report(measure(project.resolve(), arguments.model, arguments.repeats), project,
                            arguments.model))
        print(texts[-1], flush=True)
    print(machine())
    if arguments.write:
        write_section("Scoring batch, part by part (`python -m benchmarks scoring-parts --project P [--project P2]`)",
                      "\n".join(texts))

if __name__ == "__main__":
    main()
