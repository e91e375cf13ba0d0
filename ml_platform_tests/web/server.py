"""The real Dagster web server (`python -m dagster_webserver`) for a project, in its own process group."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ml_platform_tests.web.chromium import launch_in_own_group, stop_group

REPO_ROOT = Path(__file__).resolve().parents[2]

WORKSPACE_QUERY = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } } } }
    ... on PythonError { message } } }
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerError(RuntimeError):
    """The web server did not come up, or its code location did not load."""


class DagsterWebserver:
    """`dagster-webserver -h 127.0.0.1 -p PORT -w <project>/workspace.yaml`, run from the project folder.

    DAGSTER_HOME names the instance and ML_PLATFORM_PROJECT the project; the repository is put first on
    PYTHONPATH so that the code server imports the ml_platform under test.
    """

    def __init__(self, project_root: Path, dagster_home: Path, log_path: Path, location: str = "ml_platform",
                 timeout: float = 60.0):
        self.project_root = Path(project_root)
        self.dagster_home = Path(dagster_home)
        self.log_path = Path(log_path)
        self.location = location
        self.timeout = timeout
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "DagsterWebserver":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("ML_PLATFORM_DATA", None)  # data lives in the project folder, as run_chain wrote it
        env["DAGSTER_HOME"] = str(self.dagster_home)
        env["ML_PLATFORM_PROJECT"] = str(self.project_root)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> None:
        started = time.monotonic()
        for attempt in range(3):  # another process may take the free port between probe and bind
            self.port = free_port()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:
                self.process = launch_in_own_group(
                    [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(self.port),
                     "-w", str(self.project_root / "workspace.yaml")],
                    cwd=self.project_root, env=self._environment(), stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT)
            try:
                self._wait_for_server_info(started + self.timeout)
                break
            except ServerError:
                exited = self.process.poll() is not None
                stop_group(self.process)
                if not (exited and "address already in use" in self.log_tail().lower()) or attempt == 2:
                    raise
        self._wait_for_location(started + self.timeout)
        self.startup_seconds = time.monotonic() - started

    def _wait_for_server_info(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"dagster-webserver exited with code {self.process.returncode}:\n"
                                  f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise ServerError(f"no answer from {self.url}/server_info within {self.timeout:.0f} s:\n{self.log_tail()}")

    def _wait_for_location(self, deadline: float) -> None:
        last = None
        while time.monotonic() < deadline:
            last = self.graphql(WORKSPACE_QUERY)["workspaceOrError"]
            entries = {entry["name"]: entry for entry in last.get("locationEntries", [])}
            entry = entries.get(self.location)
            if entry is not None and entry["loadStatus"] == "LOADED":
                loaded = entry["locationOrLoadError"] or {}
                if loaded.get("__typename") == "RepositoryLocation":
                    return
                raise ServerError(f"code location {self.location} failed to load: "
                                  f"{loaded.get('message', loaded)}")
            time.sleep(0.2)
        raise ServerError(f"code location {self.location} not loaded within {self.timeout:.0f} s: {last}")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """POST a GraphQL query to the server; the `data` of the answer (errors raise)."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None
