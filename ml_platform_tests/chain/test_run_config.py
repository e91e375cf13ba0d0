"""ML_PLATFORM_RUN_CONFIG: the chain's runs launched with a run config file's executor (the cluster demo's dask
workers; here Dagster's multiprocess executor), and a missing or invalid file refused before anything runs, naming
the variable, the file and what is wrong."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.chain.run_config import RunConfigError, merged
from ml_platform.chain.runner import QUIET, Chain
from ml_platform.cli import main
from ml_platform.features.library import load_catalog
from ml_platform.names import REFERENCE_JOB, RUN_CONFIG_VARIABLE
from ml_platform_tests.helpers import REPO_ROOT, instance_of

BAD_FILES = {
    "daks.yaml": ("execution:\n  config:\n    daks: {}\n",
                  'not a valid run config for job .*: Received unexpected config entry "daks" at path '
                  "root:execution:config"),
    "list.yaml": ("- execution\n", "a run config is a mapping .*, not a list"),
    "broken.yaml": ("execution: [\n", "not readable as YAML"),
    "kube.yaml": ("execution:\n  config:\n    dask:\n      cluster:\n        kube: {}\n",
                  "run config execution.config.dask.cluster: 'kube' is not supported here; allowed: existing, local"),
    "address.yaml": ("execution:\n  config:\n    dask:\n      cluster:\n        existing:\n          address:\n"
                     "            env: ML_PLATFORM_NO_SUCH_ADDRESS\n",
                     'the environment variable "ML_PLATFORM_NO_SUCH_ADDRESS" which is not set'),
}


def _nothing_ran(project) -> None:
    assert not project.storage.warehouse.exists()
    with instance_of(project) as instance:
        assert instance.get_runs() == []


def test_a_missing_run_config_file_stops_the_chain_before_any_run_naming_the_variable_and_the_file(
        make_project, dagster_home, tmp_path, monkeypatch):
    project = make_project()
    missing = tmp_path / "no_such_run_config.yaml"
    monkeypatch.setenv(RUN_CONFIG_VARIABLE, str(missing))
    with pytest.raises(RunConfigError, match=f"^{RUN_CONFIG_VARIABLE}={missing}: no such file; fix the file, or "
                                             f"unset {RUN_CONFIG_VARIABLE} to execute each run in this process$"):
        run_chain(project, "flight_delay", score_days=1, say=lambda line: None)
    _nothing_ran(project)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_an_invalid_run_config_file_stops_the_chain_before_any_run_saying_what_is_wrong(
        make_project, dagster_home, tmp_path, monkeypatch, name):
    pytest.importorskip("dagster_dask", reason="the cluster extra is not installed (dagster_dask missing)")
    project = make_project()
    text, problem = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(RUN_CONFIG_VARIABLE, str(path))
    with pytest.raises(RunConfigError, match=f"^{RUN_CONFIG_VARIABLE}={path}: .*{problem}"):
        run_chain(project, "flight_delay", score_days=1, say=lambda line: None)
    _nothing_ran(project)


def test_the_demo_command_says_what_is_wrong_with_the_run_config_and_exits_1(
        make_project, dagster_home, tmp_path, monkeypatch, capsys):
    project = make_project()
    path = tmp_path / "daks.yaml"
    path.write_text(BAD_FILES["daks.yaml"][0], encoding="utf-8")
    monkeypatch.setenv(RUN_CONFIG_VARIABLE, str(path))
    assert main(["--project", str(project.root), "demo", "--score-days", "1"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: {RUN_CONFIG_VARIABLE}={path}: not a valid run config for job ") and "daks" in error
    _nothing_ran(project)


def test_the_cluster_run_config_file_is_valid_for_every_job(make_project, monkeypatch):
    pytest.importorskip("dagster_dask", reason="the cluster extra is not installed (dagster_dask missing)")
    project = make_project()
    monkeypatch.setenv("ML_PLATFORM_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    monkeypatch.setenv(RUN_CONFIG_VARIABLE, str(REPO_ROOT / "deploy" / "cluster" / "run_config.yaml"))
    chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None,
                  instance=dg.DagsterInstance.ephemeral())
    assert chain.run_config == {**QUIET, "execution": {"config": {"dask": {"cluster": {"existing": {
        "address": {"env": "ML_PLATFORM_DASK_ADDRESS"}}}}}}}


def test_without_the_variable_runs_execute_in_process_as_before(make_project, monkeypatch):
    monkeypatch.delenv(RUN_CONFIG_VARIABLE, raising=False)
    project = make_project()
    chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None,
                  instance=dg.DagsterInstance.ephemeral())
    assert chain.launched is None and chain.run_config is QUIET


def test_the_files_settings_are_merged_over_the_chains_mapping_by_mapping():
    assert merged(QUIET, {"loggers": {"console": {"config": {"log_level": "INFO"}}}, "execution": {"x": 1}}) == {
        "loggers": {"console": {"config": {"log_level": "INFO"}}}, "execution": {"x": 1}}
    assert merged({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_a_run_launched_with_the_files_executor_runs_its_steps_in_other_processes(
        make_project, dagster_home, tmp_path, monkeypatch):
    project = make_project()
    path = tmp_path / "multiprocess.yaml"
    path.write_text("execution:\n  config:\n    multiprocess:\n      max_concurrent: 2\n", encoding="utf-8")
    monkeypatch.setenv(RUN_CONFIG_VARIABLE, str(path))
    chain = Chain(project, load_catalog(project.specs_dir, project.root), say=lambda line: None)
    outcome = chain.run(REFERENCE_JOB, "reference sources")
    assert outcome.success and outcome.failures == []
    run = chain.instance.get_run_by_id(outcome.run_id)
    assert run.run_config["execution"] == {"config": {"multiprocess": {"max_concurrent": 2}}}
    assert run.run_config["loggers"] == QUIET["loggers"] and run.tags["ml_platform/chain"] == "reference sources"
    pids = {record.event_log_entry.dagster_event.pid for record in chain.instance.get_records_for_run(
        outcome.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS).records}
    assert len(pids) == 2 and os.getpid() not in pids  # airports and planes, each in a process of its own
    chain.instance.dispose()
