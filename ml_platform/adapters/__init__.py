"""The only modules that reach into Dagster's internals, one small module per concern.

Written for Dagster 1.13.27 (pinned in pyproject.toml and by ml_platform_tests/adapters/test_dagster_version.py):
- `event_log`: the batching sqlite event log configured in dagster.yaml (a new run's database copied from one
  Dagster initialised once in the process);
- `pooled_event_log`: the same, its databases kept open, for `ml-platform replay`;
- `stamped_storage`: the replay's run and schedule storages, opened by reading their Alembic stamp;
- `instance`: an instance opened from its folder, without DAGSTER_HOME;
- `clock`: Dagster's clock, read and frozen at a simulated moment;
- `daemons`: the scheduler, sensor and run-queue daemon iterations `ml-platform replay` drives;
- `run_tags`: the run tags of a partition range;
- `abandoned_runs`: runs in progress listed, and marked failed from outside (a run whose process died);
- `executor`: the platform's executor, in-process unless a run's config selects multiprocess or dask;
- `dask_steps`: dagster-dask's executor with each step's arguments sealed for current dask (the cluster extra).
Everything else in ml_platform uses Dagster's public API only (the import-linter contracts in pyproject.toml).
"""
