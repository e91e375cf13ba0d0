"""The deployment asset's page in the real Dagster web server shows a regression challenger beside the champion
it replaced: the task's metrics, the decision, money by slice and the feature importance shift.

A January project trains a weak regression champion, then the example regression (`air_time_plan`), which beats
it and is deployed; dagster-webserver serves the instance and headless Debian Chromium opens the deployment page
and the comparison's Markdown. The screenshot is kept in the module's temporary folder, and copied into the folder
named by ML_PLATFORM_SCREENSHOTS when it is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ml_platform.chain.instance import prepare_instance
from ml_platform_tests.evaluation.january import MODEL, Runs, dagster_home_at, january_project
from ml_platform_tests.evaluation.test_task_chain import REGRESSION
from ml_platform_tests.provenance.test_compare_tasks import weak
from ml_platform_tests.web.chromium import CHROMIUM, Chromium
from ml_platform_tests.web.server import DagsterWebserver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE_TIMEOUT = 60.0
SHOW = "[Show Markdown]"


def test_the_deployment_page_shows_the_regression_challenger_beside_the_champion(tmp_path):
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is not installed; CI must install it (apt-get install chromium)", pytrace=False)
        pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium')")
    project = january_project(tmp_path / "project", {MODEL: weak(REGRESSION)})
    with dagster_home_at(project.dagster_home):
        prepare_instance(project)
        runs = Runs(project)
        champion = runs.train()
        challenger = runs.train(REGRESSION)
    assert champion.champion is not None and challenger.outcome.success, challenger.outcome.failures
    assert challenger.champion.training_run == challenger.training_run

    with DagsterWebserver(project.root, project.dagster_home, log_path=tmp_path / "webserver.log") as server, \
            Chromium(1600, 1400, log_path=tmp_path / "chromium.log") as browser:
        browser.open(f"{server.url}/assets/{MODEL}/deployment")
        text = browser.wait_until(lambda text: "comparison" in text and SHOW in text and "champion" in text,
                                  "the deployment's latest materialization with its comparison", PAGE_TIMEOUT,
                                  failure_screenshot=tmp_path / "FAILED-deployment.png")
        assert challenger.champion.model_version in text
        # the comparison's Markdown is too long to render inline: open it as a person would, with its link
        opened = browser.evaluate(
            "(() => { const rows = [...document.querySelectorAll('tr')].filter(row => "
            "row.innerText.startsWith('comparison')); if (!rows.length) return false; "
            f"const link = [...rows[0].querySelectorAll('*')].filter(node => node.innerText === '{SHOW}').pop(); "
            "if (!link) return false; link.dispatchEvent(new MouseEvent('click', {bubbles: true})); "
            "return link.tagName; })()")
        assert opened, text
        shown = browser.wait_until(lambda text: "Challenger beside the champion" in text and "RMSE" in text,
                                   "the comparison's Markdown", PAGE_TIMEOUT,
                                   failure_screenshot=tmp_path / "FAILED-comparison.png")
        picture = browser.screenshot(tmp_path / "deployment-comparison.png")
        print(f"\nscreenshot: {picture}")
    if os.environ.get("ML_PLATFORM_SCREENSHOTS"):
        folder = Path(os.environ["ML_PLATFORM_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, folder / picture.name)
    for expected in (f"champion {champion.champion.model_version}", f"challenger {challenger.champion.model_version}",
                     "offset (chosen on validation)", "WAPE", "pinball loss", "Money by origin",
                     "Feature importance (share of mean |contribution|"):
        assert expected in shown, expected
