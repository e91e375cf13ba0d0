"""The chain's runs on the executor a run config file chooses (the cluster configuration: each step on a dask worker).

`ML_PLATFORM_RUN_CONFIG` names a run config file (YAML, as `dagster asset materialize -c` reads it, e.g.
`deploy/cluster/run_config.yaml`; a relative path from the working folder). Unset, the chain executes each run in
its own process, as it always has. Set, each run is launched with `dg.execute_job` on a reconstructable job (this
module's `chain_job`, which builds the project's definitions again wherever a step runs, a dask worker included),
with the file's settings merged over the chain's own run config. The file is read and checked against every job of
the project before the first run, so a missing, unreadable or invalid file stops the chain with nothing run.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
import yaml

from ml_platform.adapters.executor import ExecutorConfigError, check_executor_config
from ml_platform.build import build_definitions
from ml_platform.errors import PlatformError
from ml_platform.features.library import load_catalog
from ml_platform.names import RUN_CONFIG_VARIABLE
from ml_platform.project import Project
from ml_platform.specs.catalog import Catalog
from ml_platform.storage.resources import StoragePaths


class RunConfigError(PlatformError, ValueError):
    """The run config file ML_PLATFORM_RUN_CONFIG names is missing, unreadable or not valid for the project's jobs."""


def run_config_file(environment: Mapping[str, str] | None = None) -> Path | None:
    """The run config file ML_PLATFORM_RUN_CONFIG names (made absolute from the working folder), or None when unset."""
    text = (os.environ if environment is None else environment).get(RUN_CONFIG_VARIABLE, "").strip()
    return Path(text).expanduser().absolute() if text else None


def _problem(path: Path, what: str) -> RunConfigError:
    what = " ".join(what.split("Stack Trace:")[0].replace("dagster._config.errors.PostProcessingError: ", "").split())
    return RunConfigError(f"{RUN_CONFIG_VARIABLE}={path}: {what.rstrip('.;')}; fix the file, or unset "
                          f"{RUN_CONFIG_VARIABLE} to execute each run in this process")


def read_run_config(path: Path) -> dict[str, Any]:
    """The run config in the file: a YAML mapping (an empty file is an empty run config)."""
    if not path.is_file():
        raise _problem(path, "no such file" if not path.exists() else "not a file")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise _problem(path, f"not readable as YAML ({' '.join(str(error).split())})") from error
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise _problem(path, f"a run config is a mapping (execution:, loggers:, ...), not a {type(document).__name__}")
    return document


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` merged into `base`, mapping by mapping; where both hold a value that is not a mapping, `over`'s."""
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def check_run_config(path: Path, run_config: Mapping[str, Any], definitions: dg.Definitions) -> None:
    """Refuse, naming the file and what is wrong, a run config that a job of the definitions would not start with:
    invalid for a job's config schema, or an executor this installation cannot build from it."""
    jobs = sorted(definitions.resolve_all_job_defs(), key=lambda job: (job.name.startswith("__"), job.name))
    for job in jobs:  # the project's own jobs first, so that a message names one the user knows
        try:
            dg.validate_run_config(job, dict(run_config))
        except dg.DagsterInvalidConfigError as error:
            problems = "; ".join(item.message for item in error.errors) or str(error)
            raise _problem(path, f"not a valid run config for job {job.name}: {problems}") from None
    execution = run_config.get("execution") or {}
    if isinstance(execution, Mapping) and execution.get("config"):
        try:
            check_executor_config(execution["config"])
        except (ExecutorConfigError, dg.DagsterInvalidConfigError) as error:
            raise _problem(path, str(error)) from None


def chain_job(root: str, specs_dir: str, data_dir: str, models: list[str], job: str) -> dg.JobDefinition:
    """The job named, from the project's definitions built again (its catalog limited to `models`), as the chain's
    own definitions hold it: what `dg.build_reconstructable_job` rebuilds in every process of a run."""
    catalog = load_catalog(Path(specs_dir), Path(root))
    catalog = dataclasses.replace(catalog, models={name: model for name, model in catalog.models.items()
                                                   if name in models})
    return build_definitions(catalog, StoragePaths(Path(data_dir))).resolve_job_def(job)


def reconstructable_chain_job(project: Project, catalog: Catalog, job: str):
    """A reconstructable pointer to the job of the chain's definitions (built from this catalog's specs)."""
    return dg.build_reconstructable_job(
        __name__, chain_job.__name__,
        reconstructable_args=(str(project.root), str(catalog.specs_dir), str(project.data_dir),
                              sorted(catalog.models), job),
        reconstructor_working_directory=str(project.root))
