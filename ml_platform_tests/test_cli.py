"""The `ml-platform` command as a user runs it."""

from __future__ import annotations

import re
from pathlib import Path

from ml_platform.cli import main, parser

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_demo_command_prints_progress_and_the_money_summary(make_project, dagster_home, capsys):
    project = make_project()
    assert main(["--project", str(project.root), "demo", "--score-days", "2"]) == 0
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
