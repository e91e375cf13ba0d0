"""The automation as a person sees it in the Dagster UI after a replay: schedules, the sensor, their ticks and runs.

A January project lives through February 1-2 on the simulated clock; the real web server then serves its
instance and headless Debian Chromium opens the automation list, the scoring schedule and the retraining sensor.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil

import pytest

from ml_platform.replay.story import replay
from ml_platform.project import Project
from ml_platform_tests.helpers import REPO_ROOT, SPECS, january_model, write_yaml
from ml_platform_tests.web.chromium import CHROMIUM, Chromium
from ml_platform_tests.web.server import DagsterWebserver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOCATION = "ml_platform"
PAGE_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A January project replayed through February 1-2, served by dagster-webserver."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is not installed; CI must install it (apt-get install chromium)", pytrace=False)
        pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium')")
    base = tmp_path_factory.mktemp("automation_ui")
    root = base / "project"
    shutil.copytree(SPECS / "sources", root / "model_specs" / "sources")
    shutil.copytree(SPECS / "features", root / "model_specs" / "features")
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copyfile(REPO_ROOT / name, root / name)
    write_yaml(root / "model_specs" / "flight_delay.yaml", january_model())
    project = Project.at(root)
    replay(project, dt.date(2013, 2, 1), dt.date(2013, 2, 2), say=lambda line: None)  # into project.dagster_home
    with DagsterWebserver(root, project.dagster_home, log_path=base / "webserver.log", location=LOCATION) as server:
        yield server, base


def page(served, path: str, ready, what: str) -> str:
    server, base = served
    with Chromium(1600, 1000, log_path=base / f"chromium-{path.replace('/', '_')}.log") as browser:
        browser.open(f"{server.url}/{path}")
        text = browser.wait_until(ready, what, timeout=PAGE_TIMEOUT,
                                  failure_screenshot=base / f"FAILED-{path.replace('/', '_')}.png")
        print(f"\nscreenshot: {browser.screenshot(base / (path.replace('/', '_') + '.png'))}")
        return text


def test_the_automation_page_lists_the_generated_schedules_and_sensor(served):
    names = ("flight_delay__daily_scoring", "flight_delay__outcomes", "flight_delay__retraining")
    expected = (*names, "At 06:00 PM EST", "At 06:00 AM EST", "Standard sensor")
    # the list renders the names before each row's schedule and kind: wait for the whole table
    text = page(served, "automation", lambda text: all(item in text for item in expected),
                "the model's two schedules (with their crons) and its sensor")
    assert "At 06:00 PM EST" in text and "At 06:00 AM EST" in text  # cron in the entity's time zone
    assert "Standard sensor" in text


def test_the_scoring_schedule_shows_its_ticks_on_the_simulated_days_and_their_runs(served):
    def ready(text: str) -> bool:
        return "Tick history" in text and text.count("1 run requested") >= 3

    text = page(served, f"locations/{LOCATION}/schedules/flight_delay__daily_scoring", ready,
                "the schedule's simulated ticks")
    assert "Every day at 18:00 (America/New_York), load the flights day 1 day(s) ahead" in text
    assert re.search(r"Target\s+flight_delay__daily\s", text), text
    # ticks at 18:00 New York time of January 31, February 1 and 2 (23:00 UTC: the browser runs in UTC)
    for day in ("Jan 31, 2013, 11:00:00 PM", "Feb 1, 2013, 11:00:00 PM", "Feb 2, 2013, 11:00:00 PM"):
        assert day in text, day
    assert len(re.findall(r"1 run requested\n[0-9a-f]{8}", text)) >= 3


def test_the_retraining_sensor_shows_why_it_trained_and_why_it_skipped(served):
    def ready(text: str) -> bool:
        return "1 run requested" in text and "0 runs requested" in text

    text = page(served, f"locations/{LOCATION}/sensors/flight_delay__retraining", ready,
                "the sensor's simulated ticks")
    assert "Requests a training run of flight_delay monthly" in text
    assert "Feb 1, 2013, 11:00:30 AM" in text  # the morning tick that trained the first model
    assert "(1 partition created)" in text  # the training run's dynamic partition, added by the tick
