"""The cluster configuration's services for tests: `.ci/services` started and stopped from Python."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ml_platform_tests.helpers import REPO_ROOT

SCRIPT = REPO_ROOT / ".ci" / "services"


def missing_services() -> str | None:
    """Why the cluster tests cannot run here, or None when PostgreSQL and the cluster extra are installed."""
    if shutil.which("initdb") is None and not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return "PostgreSQL's initdb is not installed (apt-get install -y postgresql; .ci/run installs it)"
    for module in ("dagster_postgres", "dagster_dask", "distributed", "deltalake", "moto", "boto3"):
        if importlib.util.find_spec(module) is None:
            return f"the cluster extra is not installed ({module} missing: pip install -e '.[cluster]')"
    return None


@dataclass
class Services:
    """PostgreSQL and a dask cluster started by `.ci/services` into `state`."""

    state: Path
    environment: dict[str, str]
    started: dict[str, str] = field(default_factory=dict)

    def start(self, workers: int = 2, registry: bool = False, **environment: str) -> dict[str, str]:
        """Start the services (the workers with environment added to this process's; with registry, also
        ML_PLATFORM_REGISTRY_URL naming the instance's database); their URL and address."""
        env = {**self.environment, **environment, "PYTHON": sys.executable}
        options = ["--registry"] if registry else []
        completed = subprocess.run(["bash", str(SCRIPT), "start", str(self.state), str(workers), *options], env=env,
                                   capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        for line in (self.state / "env").read_text().splitlines():
            name, value = line.removeprefix("export ").split("=", 1)
            self.started[name] = value
        return dict(self.started)

    def pids(self) -> dict[str, int]:
        """{name: PID} of every process the script started (postgres, object-store, scheduler, worker-N)."""
        path = self.state / "pids"
        if not path.exists():
            return {}
        return {name: int(pid) for name, pid in (line.split() for line in path.read_text().splitlines())}

    def stop(self) -> None:
        """Stop what `start` started, by its PIDs."""
        if not self.state.exists():
            return
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.state)], env={**os.environ, "PYTHON": sys.executable},
                       check=True, capture_output=True, timeout=120)
