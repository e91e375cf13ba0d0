"""Which runs count as abandoned: their executing process is gone; a live one, another host's or Dagster's is not."""

from __future__ import annotations

import socket
import subprocess
import sys

import dagster as dg

from ml_platform.chain.instance import fail_abandoned_runs
from ml_platform.names import PROCESS_TAG
from ml_platform.tags import process_gone, this_process

from ml_platform_tests.helpers import instance_of


def finished_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_this_process_lives_and_a_finished_one_is_gone():
    assert process_gone(this_process()) is None
    pid = finished_pid()
    assert process_gone({PROCESS_TAG: f"{socket.gethostname()}:{pid}:"}) == pid


def test_a_pid_handed_out_again_to_a_later_process_counts_as_gone():
    host, pid, started = this_process()[PROCESS_TAG].split(":")
    assert started, "Linux's /proc gives the process start time"
    assert process_gone({PROCESS_TAG: f"{host}:{pid}:{int(started) - 1}"}) == int(pid)


def test_runs_of_another_host_or_without_the_tag_are_left_alone():
    pid = finished_pid()
    assert process_gone({PROCESS_TAG: f"another-host-{socket.gethostname()}:{pid}:"}) is None
    assert process_gone({}) is None


def test_only_started_runs_of_a_dead_process_are_marked_failed(make_project, dagster_home):
    project = make_project()
    instance = instance_of(project)
    dead = {PROCESS_TAG: f"{socket.gethostname()}:{finished_pid()}:"}
    runs = {name: instance.create_run_for_job(dg.GraphDefinition(name="nothing").to_job(name=name), tags=tags)
            for name, tags in (("dead", dead), ("alive", this_process()), ("untagged", {}))}
    for run in runs.values():
        instance.handle_run_event(run.run_id, dg.DagsterEvent(
            event_type_value="PIPELINE_START", job_name=run.job_name, message="started"))
    done = instance.create_run_for_job(dg.GraphDefinition(name="nothing").to_job(name="done"), tags=dead)
    [failed] = fail_abandoned_runs(instance)
    assert (failed.run_id, failed.job) == (runs["dead"].run_id, "dead")
    status = {name: instance.get_run_by_id(run.run_id).status for name, run in runs.items()}
    assert status == {"dead": dg.DagsterRunStatus.FAILURE, "alive": dg.DagsterRunStatus.STARTED,
                      "untagged": dg.DagsterRunStatus.STARTED}
    assert instance.get_run_by_id(done.run_id).status == dg.DagsterRunStatus.NOT_STARTED
    assert fail_abandoned_runs(instance) == []


def test_the_ui_command_frees_the_queue_of_a_killed_demos_run_before_it_starts(make_project, dagster_home,
                                                                             monkeypatch, capsys):
    from ml_platform.cli import main
    from ml_platform.cli import demo_commands

    project = make_project()
    instance = instance_of(project)
    pid = finished_pid()
    run = instance.create_run_for_job(dg.GraphDefinition(name="nothing").to_job(name="killed_demo"),
                                      tags={PROCESS_TAG: f"{socket.gethostname()}:{pid}:"})
    instance.handle_run_event(run.run_id, dg.DagsterEvent(event_type_value="PIPELINE_START",
                                                          job_name=run.job_name, message="started"))
    started = []

    class NoServer:
        """Stands in for the web server's process: this test is about what happens before it starts."""

        def __init__(self, command, **options):
            started.append(command)

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(demo_commands.subprocess, "Popen", NoServer)
    assert main(["--project", str(project.root), "ui"]) == 0
    assert capsys.readouterr().out.startswith(f"! marked run {run.run_id[:8]} (killed_demo) failed: its process "
                                              f"{pid} is gone\n")
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE and started
