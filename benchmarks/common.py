"""What every benchmark shares: child processes measured for time and peak memory, projects, the machine, RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BIN = REPO / ".venv" / "bin"


@dataclass(frozen=True)
class ChildRun:
    """One child process: its wall time, its peak resident memory and what it printed."""

    seconds: float
    peak_mb: float
    stdout: str
    stderr: str
    returncode: int


def run_child(command: list[str], environment: dict | None = None, cwd: Path | None = None) -> ChildRun:
    """Run a command to completion; its own peak RSS comes from wait4, so other children do not count."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=environment, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(seconds, usage.ru_maxrss / 1024, out.read().decode(), err.read().decode(),
                        process.returncode)


def require_success(child: ChildRun, what: str) -> ChildRun:
    """Stop the benchmark, showing the child's output, when it failed."""
    if child.returncode != 0:
        raise SystemExit(f"{what} failed ({child.returncode}):\n{child.stdout[-3000:]}\n{child.stderr[-5000:]}")
    return child


def copy_project(folder: Path) -> Path:
    """A fresh copy of the project's specs and instance settings in folder (no warehouse, no runs)."""
    shutil.copytree(REPO / "model_specs", folder / "model_specs")
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copyfile(REPO / name, folder / name)
    return folder


def edit_yaml(path: Path, edit) -> None:
    """Apply edit(document) to a YAML spec file."""
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def project_environment(project: Path) -> dict:
    """Environment of a command run on a project: its own instance and data folders."""
    environment = {**os.environ, "DAGSTER_HOME": str(project / ".dagster_home")}
    environment.pop("ML_PLATFORM_DATA", None)
    return environment


def machine() -> str:
    """The machine the figures were measured on, with its current load."""
    load = os.getloadavg()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return (f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.platform()}, Python {platform.python_version()}; "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) at the end")


def write_section(title: str, body: str) -> None:
    """Replace (or append) the `## title...` section of RESULTS.md, dated and with the machine."""
    section = f"## {title}\n\nMeasured {time.strftime('%Y-%m-%d %H:%M')} on {machine()}.\n\n{body.rstrip()}\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    heading = title.split(" (", 1)[0]
    pattern = re.compile(rf"## {re.escape(heading)}\b.*?(?=\n## |\Z)", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n"), text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
