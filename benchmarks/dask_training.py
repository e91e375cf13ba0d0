"""Single-machine LightGBM against lightgbm.dask on local workers, on the same rows: wall time, peak memory, AUC.

    python -m benchmarks dask-training --rows 1000000 [--workers 2] [--rounds N] [--write]

The rows are the flights replicated back in time by benchmarks/scale_data.py (copies of 2013 with noise; enough
copies for --rows), the latest --rows of them by date: the first 90% by date train, the last 10% validate. The
features are the demo's schedule columns (month, weekday, hour, minute, distance, carrier, origin, destination,
the three last as categories); the label is a departure 15 minutes late or more (or cancelled). The rows are
written once as a snapshot-like Parquet file (a `split` column, train before validation) and each training reads
them from it as a model step reads its snapshot (`snapshots.columns.SplitRows`). Both trainings are the platform's
own (`training.algorithms.train` and `training.distributed.train_distributed`, so reading and encoding are in both
times; the distributed one has each worker read and encode its own rows), with the demo spec's LightGBM algorithm
(model_specs/flight_delay.yaml; --rounds overrides its n_estimators). Each runs in a child process of its own: the single-machine one with the platform's fixed 2
threads; the distributed one as the client of a dask LocalCluster of --workers processes of one thread each,
started before its clock starts. Peak memory: each process's own peak RSS (VmHWM; the workers' read by the
client with `client.run` after training). The copies are correlated, so the AUC is only a comparison of the two trainings.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import REPO, markdown_table, require_success, run_child, write_section

FLIGHTS_PER_COPY = 336_776
FEATURES = ["month", "weekday", "hour", "minute", "distance", "carrier", "origin", "dest"]
CATEGORIES = ["carrier", "origin", "dest"]


SNAPSHOT = "snapshot.parquet"


def _write_snapshot(folder: Path, rows: int) -> None:
    """The latest `rows` flights, oldest first, as a snapshot-like file: the first 90% train, the rest validate."""
    import duckdb

    duckdb.connect().execute(f"""
        COPY (
            WITH latest AS (
                SELECT month, dayofweek(make_date(year, month, day)) AS weekday, hour, minute, distance, carrier,
                       origin, dest, coalesce(dep_delay, 999) >= 15 AS label,
                       row_number() OVER (ORDER BY year DESC, month DESC, day DESC, sched_dep_time DESC, carrier,
                                          flight) AS newness
                FROM read_parquet('{folder / 'flights.parquet'}'))
            SELECT CASE WHEN newness > {rows - int(rows * 0.9)} THEN 'train' ELSE 'validation' END AS split,
                   * EXCLUDE (newness)
            FROM latest WHERE newness <= {rows} ORDER BY newness DESC
        ) TO '{folder / SNAPSHOT}' (FORMAT parquet)""")


def _splits(folder: Path):
    """The training and validation rows of the snapshot file, read as a model step reads them."""
    import duckdb

    from ml_platform.snapshots.columns import SplitRows

    connection = duckdb.connect()
    return tuple(SplitRows.read(connection, folder / SNAPSHOT, split) for split in ("train", "validation"))


def _algorithm(rounds: int | None):
    from ml_platform.specs.models import LightGBMAlgorithm

    document = yaml.safe_load((REPO / "model_specs" / "flight_delay.yaml").read_text())["algorithm"]
    if rounds is not None:
        document.setdefault("params", {})["n_estimators"] = rounds
    return LightGBMAlgorithm.model_validate(document)


def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM, which exec resets (ru_maxrss keeps the forking parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def child(kind: str, folder: Path, workers: int, rounds: int | None) -> None:
    """One training in this process; prints its figures as JSON on the last line."""
    from sklearn.metrics import roc_auc_score

    from ml_platform.training.algorithms import train
    from ml_platform.training.distributed import DistributedSetting, train_distributed

    algorithm, figures = _algorithm(rounds), {}
    if kind == "local":
        train_rows, valid_rows = _splits(folder)
        started = time.perf_counter()
        result = train(algorithm, FEATURES, CATEGORIES, train_rows, valid_rows)
        figures["seconds"] = time.perf_counter() - started
    else:
        from distributed import Client, LocalCluster

        # the workers start before the rows are read, so that none of them starts as a copy of a large process
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            train_rows, valid_rows = _splits(folder)
            started = time.perf_counter()
            result = train_distributed(algorithm, FEATURES, CATEGORIES, train_rows, valid_rows,
                                       DistributedSetting(cluster.scheduler_address, 1))
            figures["seconds"] = time.perf_counter() - started
            figures["worker_peak_mb"] = sorted(client.run(_peak_mb).values())
            figures["rounds_trained"] = result.details["distributed"].rounds_trained
    peak = _peak_mb()  # before the validation frame below is read
    import pandas as pd

    frame = pd.DataFrame({name: valid_rows.column(name) for name in FEATURES})
    figures.update(trees=result.details["trees"], client_peak_mb=peak, train_rows=len(train_rows.label),
                   auc=float(roc_auc_score(valid_rows.label, result.predictor.predict(frame))))
    print(json.dumps(figures))


def main() -> None:
    """Measure both trainings; print (and with --write record) the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in all (train and validation)")
    parser.add_argument("--workers", type=int, default=2, help="dask worker processes (one thread each)")
    parser.add_argument("--rounds", type=int, default=None, help="n_estimators instead of the demo spec's")
    parser.add_argument("--write", action="store_true", help="record the figures in benchmarks/RESULTS.md")
    parser.add_argument("--child", choices=["local", "distributed"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.rows < 10_000:
        parser.error(f"--rows must be at least 10000, got {options.rows}")
    if not 1 <= options.workers <= 16:
        parser.error(f"--workers must be between 1 and 16, got {options.workers}")
    if options.rounds is not None and options.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {options.rounds}")
    if options.child:
        child(options.child, options.data, options.workers, options.rounds)
        return
    from benchmarks.scale_data import build_files

    replicas = math.ceil(options.rows / FLIGHTS_PER_COPY)
    with tempfile.TemporaryDirectory(prefix="ml-platform-dask-training-") as folder:
        started = time.perf_counter()
        build_files(Path(folder), replicas)
        _write_snapshot(Path(folder), options.rows)
        print(f"{replicas} copies of the flights written in {time.perf_counter() - started:.0f} s", flush=True)
        figures = {}
        for kind in ("local", "distributed"):
            command = [sys.executable, "-m", "benchmarks.dask_training", "--child", kind, "--data", folder,
                       "--rows", str(options.rows), "--workers", str(options.workers)]
            command += ["--rounds", str(options.rounds)] if options.rounds is not None else []
            run = require_success(run_child(command, cwd=REPO), f"the {kind} training")
            figures[kind] = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{kind}: {figures[kind]}", flush=True)
    local, distributed = figures["local"], figures["distributed"]
    rows = [["single machine (2 threads)", f"{local['seconds']:.1f}", local["trees"], "-",
             f"{local['client_peak_mb']:.0f}", "-", f"{local['auc']:.5f}", "-"],
            [f"lightgbm.dask, {options.workers} workers x 1 thread", f"{distributed['seconds']:.1f}",
             distributed["trees"], distributed["rounds_trained"], f"{distributed['client_peak_mb']:.0f}",
             " / ".join(f"{value:.0f}" for value in distributed["worker_peak_mb"]), f"{distributed['auc']:.5f}",
             f"{distributed['auc'] - local['auc']:+.5f}"]]
    table = markdown_table(["training", "seconds", "trees kept", "rounds trained", "client (or process) peak MB",
                            "worker peak MB", "validation AUC", "AUC difference"], rows)
    print(table)
    if options.write:
        write_section("Training on dask.distributed (python -m benchmarks dask-training)",
                      f"{local['train_rows']:,} training rows and {options.rows - local['train_rows']:,} validation "
                      f"rows of the replicated flights; the demo spec's LightGBM"
                      f"{f' with {options.rounds} rounds' if options.rounds else ''}; seconds from the labels read "
                      f"to the trained model (reading and encoding the snapshot file's rows included; the cluster's "
                      f"start excluded).\n\n{table}\n")


if __name__ == "__main__":
    main()
