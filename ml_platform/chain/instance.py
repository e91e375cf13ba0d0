"""A project's Dagster instance: its folder, prepared with the project's dagster.yaml, and the instance opened there.

Nothing here reads or sets DAGSTER_HOME: the folder is the project's (`Project.dagster_home`, which the command
line resolves from the environment), so one process may hold the instances of several projects.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ml_platform.adapters import abandoned_runs
from ml_platform.adapters.instance import CONFIG_FILE, open_instance as open_instance_folder
from ml_platform.project import Project
from ml_platform.tags import process_gone


def prepare_instance(project: Project) -> Path:
    """The project's instance folder, created holding the project's dagster.yaml when it has none; returned."""
    home = Path(project.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / CONFIG_FILE
    template = project.root / CONFIG_FILE
    if not config.exists() and template.exists() and template.resolve() != config:
        shutil.copyfile(template, config)
    return home


def open_instance(project: Project) -> dg.DagsterInstance:
    """The project's Dagster instance, its folder prepared first."""
    return open_instance_folder(prepare_instance(project))


@dataclass(frozen=True)
class AbandonedRun:
    """A run marked failed because the process executing it is gone."""

    run_id: str
    job: str
    pid: int

    def describe(self) -> str:
        """What the user is told."""
        return f"marked run {self.run_id[:8]} ({self.job}) failed: its process {self.pid} is gone"


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[AbandonedRun]:
    """Mark failed every STARTED or STARTING run whose executing process (its `PROCESS_TAG`) no longer exists.

    Such a run was left by a killed demo or replay; it would hold the instance's one run slot for ever. Runs
    without the tag (a run worker launched by the UI's daemon) and runs of another host are left alone.
    """
    failed = []
    for run in abandoned_runs.runs_in_progress(instance):
        pid = process_gone(run.tags)
        if pid is None:
            continue
        abandoned_runs.mark_failed(instance, run, f"The process executing this run ({pid}) is gone (killed, or its "
                                                  f"machine stopped): marked failed when the platform started again.")
        failed.append(AbandonedRun(run.run_id, run.job_name, pid))
    return failed
