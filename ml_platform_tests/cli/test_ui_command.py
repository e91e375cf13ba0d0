"""`ml-platform ui` as a user runs it: the real `dagster dev` (web server, daemon, code server) in its own process
group, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from ml_platform_tests.helpers import REPO_ROOT
from ml_platform_tests.web.chromium import launch_in_own_group, stop_group
from ml_platform_tests.web.server import free_port

START = "import sys; from ml_platform.cli import main; sys.exit(main(sys.argv[1:]))"


def _wait_for_server_info(process: subprocess.Popen, port: int, log, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"ml-platform ui exited with {process.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError(f"no /server_info within {timeout:.0f} s:\n{log.read_text()}")


@pytest.mark.slow
@pytest.mark.parametrize("ctrl_c", ["terminal", "command_only"])
def test_ui_says_what_runs_by_itself_starts_quietly_and_stops_cleanly_on_ctrl_c(make_project, tmp_path, ctrl_c):
    project = make_project()
    log = tmp_path / "ui.log"
    port = free_port()
    environment = {**os.environ, "PYTHONUNBUFFERED": "1",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    environment.pop("DAGSTER_HOME", None)
    environment.pop("ML_PLATFORM_DATA", None)
    with open(log, "wb") as output:
        process = launch_in_own_group([sys.executable, "-c", START, "--project", str(project.root), "ui",
                                       "--port", str(port)], cwd=project.root, env=environment,
                                      stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_server_info(process, port, log)
        time.sleep(3)  # the daemon's first ticks
        if ctrl_c == "terminal":  # a terminal's Ctrl-C interrupts the whole foreground process group
            os.killpg(process.pid, signal.SIGINT)
        else:  # `kill -INT` of the command alone: it passes the interrupt on
            process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        stop_group(process)  # whatever is left of this test's own group, by its id
    text = log.read_text()
    home = project.dagster_home

    # it says, before anything else, what starts ON against the real clock and how to stop it
    lines = text.splitlines()
    assert lines[0] == f"ml-platform ui: http://127.0.0.1:{port} on the instance {home}"
    assert ("The Dagster daemon starts with the UI: these schedules and sensors are ON and run against the real "
            "clock") in text
    for name in ("schedule flight_delay__daily_scoring: daily at 18:00", "schedule flight_delay__outcomes: daily "
                 "at 06:00", "sensor   flight_delay__retraining: hourly"):
        assert name in text
    assert f"`DAGSTER_HOME={home} dagster schedule stop NAME -w workspace.yaml`" in text
    assert "Ctrl-C stops the web UI and the daemon." in text
    # the instance's own dagster.yaml is used: no warning that it is not, no `dg dev` notice
    assert (home / "dagster.yaml").is_file()
    assert "will not be used" not in text and "dg dev" not in text and "superseded" not in text
    assert "Error loading repository location" not in text  # the code location loaded
    assert "Serving dagster-webserver" in text
    # and Ctrl-C ends it cleanly
    assert "Traceback" not in text and "KeyboardInterrupt:" not in text
    assert lines[-1] == "ml-platform ui: stopped"
