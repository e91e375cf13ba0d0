"""The `ml-platform` command as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from ml_platform.cli import main, parser
from ml_platform.cli.common import BAD_INPUT, BLOCKED, ERROR, OK, project_of

from ml_platform_tests.helpers import REPO_ROOT, january_model


@pytest.mark.slow
def test_demo_command_prints_progress_and_the_money_summary(make_project, dagster_home, capsys, tmp_path,
                                                            monkeypatch):
    project = make_project()
    data = tmp_path / "elsewhere" / "data"
    monkeypatch.setenv("ML_PLATFORM_DATA", str(data))  # with DAGSTER_HOME (the fixture): both move out of --project
    assert main(["--project", str(project.root), "demo", "--score-days", "2"]) == 0
    assert (data / "warehouse.duckdb").is_file() and (dagster_home / "history" / "runs.db").is_file()
    assert not (project.root / ".ml_platform").exists() and not (project.root / ".dagster_home").exists()
    output = capsys.readouterr().out
    for step in ("[1/4] reference sources", "[2/4] daily sources and features, 2013-01-01 to 2013-02-02 (33 days)",
                 "[3/4] training run 2013-01-31_", "[4/4] production predictions 2013-02-01 to 2013-02-02"):
        assert step in output
    assert re.search(r"Money on the test window 2013-01-26 to 2013-01-31: -?[\d,]+ USD", output)
    assert re.search(r"Deployed model: flight_delay-[0-9a-f]{12} \(promotion #1", output)
    assert "Predictions: " in output and "predictions.flight_delay__latest" in output
    assert f"DAGSTER_HOME={dagster_home} dagster dev -w workspace.yaml" in output


def test_demo_command_names_an_unknown_model(make_project, dagster_home, capsys):
    project = make_project()
    assert main(["--project", str(project.root), "demo", "--model", "flight_dealy"]) == 1
    error = capsys.readouterr().err
    assert "no model named 'flight_dealy'" in error and "(models: flight_delay)" in error


def test_project_folders_follow_the_environment_with_or_without_project(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ML_PLATFORM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("ML_PLATFORM_PROJECT", str(tmp_path / "elsewhere"))
    for argv, root in ((["--project", str(tmp_path / "project"), "ui"], tmp_path / "project"),
                       (["ui"], tmp_path / "elsewhere")):
        project = project_of(parser().parse_args(argv))
        assert (project.root, project.data_dir, project.dagster_home) == (root, tmp_path / "data", tmp_path / "home")
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.delenv("ML_PLATFORM_DATA")
    project = project_of(parser().parse_args(["--project", str(tmp_path / "project"), "ui"]))
    assert project.dagster_home == tmp_path / "project" / ".dagster_home"
    assert project.data_dir == tmp_path / "project" / ".ml_platform"


def test_ui_binds_to_localhost_by_default():
    arguments = parser().parse_args(["ui"])
    assert arguments.host == "127.0.0.1" and arguments.port == 3000


def test_readme_set_up_commands_are_the_ones_ci_runs():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    demo = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/ml-platform demo"
    tests = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/pytest"
    assert f"```bash\n{demo}\n```" in readme
    assert f"```bash\n{tests}\n```" in readme
    assert f"\n{tests}\n" in ci


def run_command(project, *arguments: str) -> subprocess.CompletedProcess:
    """`ml-platform` in its own process, as a user's CI runs it: exit code, standard output and error."""
    command = [sys.executable, "-c", "import sys; from ml_platform.cli import main; sys.exit(main())",
               "--project", str(project.root), *arguments]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)


@pytest.mark.slow
def test_demo_blocked_by_the_gate_exits_3_with_only_the_platforms_lines(make_project, dagster_home):
    project = make_project({"flight_delay": january_model(gate={"min_money": -1_000_000_000, "min_roc_auc": 0.99})})
    for attempt in ("first", "re-run"):
        done = run_command(project, "demo", "--score-days", "2")
        assert done.returncode == 3, (attempt, done.stdout, done.stderr)
        console = done.stdout + done.stderr
        for fragment in ("Traceback", "Stack Trace", "dagster._core", "DagsterAssetCheckFailedError", " - dagster - "):
            assert fragment not in console, (attempt, fragment, console)
        assert "roc_auc_floor FAILED" in done.stdout and "Deployed model: none (the gate did not pass)" in done.stdout
        assert re.search(r"blocked: the gate did not deploy flight_delay-[0-9a-f]{12} \(training run "
                         r"2013-01-31_[0-9a-f]{12}\); exit code 3", done.stderr), done.stderr
    assert "up to date: flight_delay-" in done.stdout and "the gate blocked it; no run needed" in done.stdout


def test_exit_codes_are_distinct_and_documented_in_the_readme():
    assert (OK, ERROR, BAD_INPUT, BLOCKED) == (0, 1, 2, 3)
    readme = (REPO_ROOT / "README.md").read_text()
    for line in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert line in readme
