"""The Dagster web UI as a person sees it, after the demo chain materialized the January model.

A January project is materialized once per module with `run_chain` into a temporary instance; the real web
server (`python -m dagster_webserver`) then serves it on 127.0.0.1, and headless Debian Chromium, driven over
its DevTools protocol, opens the model's asset group (lineage and list) and the evaluation asset's page. The
tests assert on the rendered text, take PNG screenshots, and cross-check the same server's GraphQL answers.

Screenshots land in the module's temporary folder (the paths are printed; `pytest -s` shows them) and are
also copied into the folder named by ML_PLATFORM_SCREENSHOTS when it is set. Without /usr/bin/chromium the
tests are skipped, except in CI (CI=true), where that is an error.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from ml_platform.chain.model_chain import ChainResult, run_chain
from ml_platform.evaluation.report import PLOT_CAPTION, headline_parts
from ml_platform.names import MODEL_STAGES, TRAINING_STAGES, outcomes_job_name, scoring_job_name, training_job_name
from ml_platform.project import Project
from ml_platform_tests.helpers import REPO_ROOT, SPECS, january_model, write_yaml
from ml_platform_tests.web.chromium import CHROMIUM, Chromium
from ml_platform_tests.web.server import DagsterWebserver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODEL = "flight_delay"
LOCATION = "ml_platform"
STAGES = MODEL_STAGES
# the training stages have one partition each (the training run); the others one per day, SCORE_DAYS of them made
DAILY_STAGES = tuple(stage for stage in MODEL_STAGES if stage not in TRAINING_STAGES)
GATE_CHECKS = ("money_floor", "roc_auc_floor", "predictions_sane")  # the evaluation may carry more checks
SCORE_DAYS = 2
PAGE_TIMEOUT = 30.0

# The group's lineage is drawn zoomed to fit; below a scale of 0.6 Dagster draws bare name boxes without
# status rows. 2560 px leave the graph area (about 2300 px) wide enough for full nodes with a large margin
# (at 1600 px the nodes were bare, at 1920 px just full).
LINEAGE_VIEWPORT = (2560, 1440)
PAGE_VIEWPORT = (1600, 1000)

GROUP_QUERY = """
query($group: AssetGroupSelector!) {
  assetNodes(group: $group) {
    assetKey { path }
    groupName
    partitionStats { numMaterialized numPartitions numFailed numMaterializing }
    assetMaterializations(limit: 1) { runId partition }
    assetChecksOrError { ... on AssetChecks { checks { name blocking
      executionForLatestMaterialization { status evaluation { success } } } } }
  }
}
"""


@dataclass
class Served:
    project: Project
    home: Path
    chain: ChainResult
    server: DagsterWebserver
    screenshots: Path
    timings: dict[str, float] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.server.url}/{path.lstrip('/')}"

    def run_id(self, job: str) -> str:
        """The id of the chain's run of a job."""
        return next(run.run_id for run in self.chain.runs if run.job == job)

    def group_nodes(self) -> dict[str, dict]:
        """The server's GraphQL view of the model's asset group, by stage."""
        nodes = self.server.graphql(GROUP_QUERY, {"group": {
            "groupName": MODEL, "repositoryName": "__repository__", "repositoryLocationName": LOCATION}})
        return {node["assetKey"]["path"][1]: node for node in nodes["assetNodes"]}

    def evaluation_checks(self) -> list[str]:
        """Names of the evaluation asset's checks, as GraphQL lists them."""
        return [check["name"] for check in self.group_nodes()["evaluation"]["assetChecksOrError"]["checks"]]


@pytest.fixture(scope="module")
def chromium_available() -> Path:
    """Debian's Chromium; missing, it skips the tests locally and fails them in CI."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = (f"{CHROMIUM} is not installed (Debian package 'chromium'); "
                  "the web UI tests need it to render the Dagster UI")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run them, so CI must install it (apt-get install chromium)",
                        pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def served(chromium_available, tmp_path_factory) -> Served:
    """The January model materialized by the demo chain in a fresh instance, served by dagster-webserver."""
    base = tmp_path_factory.mktemp("web_ui")
    timings: dict[str, float] = {}

    root = base / "project"
    shutil.copytree(SPECS / "sources", root / "model_specs" / "sources")
    shutil.copytree(SPECS / "features", root / "model_specs" / "features")
    shutil.copyfile(REPO_ROOT / "dagster.yaml", root / "dagster.yaml")
    shutil.copyfile(REPO_ROOT / "workspace.yaml", root / "workspace.yaml")
    write_yaml(root / "model_specs" / f"{MODEL}.yaml", january_model())
    home = base / "dagster_home"
    project = Project.at(root, dagster_home=home)  # run_chain copies the project's dagster.yaml there (no nux modal)

    started = time.monotonic()
    chain = run_chain(project, MODEL, score_days=SCORE_DAYS, say=lambda line: None)
    timings["materialize"] = time.monotonic() - started
    assert chain.runs and all(run.success for run in chain.runs), chain.runs
    assert chain.scored_rows > 0, "the chain scored nothing: no champion passed the gate?"

    with DagsterWebserver(root, home, log_path=base / "webserver.log", location=LOCATION) as server:
        timings["webserver start"] = server.startup_seconds
        print(f"\nweb UI test: {server.url} serving {root} (instance {home}; log {base / 'webserver.log'})")
        yield Served(project, home, chain, server, base / "screenshots", timings)
        print("\nweb UI test timings: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))


@pytest.fixture
def browser(served, request) -> Chromium:
    """A fresh headless Chromium (own profile, own process group) for one test."""
    started = time.monotonic()
    log = served.screenshots.parent / f"chromium-{request.node.name}.log"
    with Chromium(*PAGE_VIEWPORT, log_path=log) as chromium:
        served.timings[f"chromium start ({request.node.name})"] = time.monotonic() - started
        yield chromium


def keep_screenshot(served: Served, browser: Chromium, name: str) -> Path:
    """Screenshot the page into the module's folder (and ML_PLATFORM_SCREENSHOTS); check it is a real PNG."""
    path = browser.screenshot(served.screenshots / f"{name}.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (browser.width, browser.height), (path, width, height)
    assert len(data) > 30_000, f"{path} is only {len(data)} bytes: a blank page?"
    print(f"\nscreenshot: {path}")
    wanted = os.environ.get("ML_PLATFORM_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        print(f"screenshot copied to {shutil.copyfile(path, Path(wanted) / path.name)}")
    return path


def open_and_wait(served: Served, browser: Chromium, path: str, ready: Callable[[str], bool], what: str,
                  shot: str) -> str:
    """Open a page of the UI and wait until its visible text satisfies `ready`; return that text.

    The UI fills a page from several GraphQL queries, so `ready` waits for every part the test reads.
    """
    started = time.monotonic()
    browser.open(served.url(path))
    text = browser.wait_until(ready, what, timeout=PAGE_TIMEOUT,
                              failure_screenshot=served.screenshots / f"FAILED-{shot}.png")
    served.timings[f"page {path}"] = time.monotonic() - started
    assert "Join the Dagster community" not in text, "the onboarding modal covers the page (nux not disabled?)"
    return text


def asset_rows(text: str) -> dict[str, str]:
    """The asset list's rows, by asset name ('flight_delay / snapshot'), as the text of each row."""
    names = [f"{MODEL} / {stage}" for stage in STAGES]
    positions = sorted((text.find(name), name) for name in names if name in text)
    return {name: text[start:end]
            for (start, name), (end, _) in zip(positions, positions[1:] + [(len(text), None)])}


def section(text: str, start: str, end: str) -> str:
    """The part of the page's text from `start` up to `end`."""
    begin = text.index(start)
    return text[begin:text.index(end, begin)]


def test_asset_group_lineage_shows_every_stage_materialized(served, browser):
    """The model's group graph: seven assets, the training ones fully filled, the daily ones partly, the gate passed."""
    checks = len(served.evaluation_checks())
    passed = f"{checks} / {checks} Passed"
    browser.set_viewport(*LINEAGE_VIEWPORT)

    def drawn(text: str) -> bool:
        return (text.count("Latest event") >= len(STAGES) and text.count("% filled") >= len(STAGES)
                and passed in text and "365 partitions" in text)

    text = open_and_wait(served, browser, f"locations/{LOCATION}/asset-groups/{MODEL}", drawn,
                         "the group's five asset nodes with their status", "group-lineage")
    keep_screenshot(served, browser, f"{MODEL}-group-lineage")

    assert "Asset Group in" in text and LOCATION in text
    # One node per asset of the group, each titled by its stage (the last part of its key `[model, stage]`) and
    # the time of its latest materialization ("... ago"; a never-materialized asset shows "–").
    events = dict(re.findall(r"^(\w+)\nLatest event\n([^\n]+)\n", text, flags=re.M))
    assert sorted(events) == sorted(STAGES), text
    assert all(event.endswith(" ago") for event in events.values()), events
    # the node titles are in the page's DOM, each stage once, the model's name on none
    titles = browser.evaluate(
        "Array.from(document.querySelectorAll('[data-tooltip]')).map(e => e.getAttribute('data-tooltip'))")
    assert sorted(title for title in titles if title in STAGES) == sorted(STAGES), titles
    assert MODEL not in titles, titles
    # Training stages are single-partition assets, all filled; predictions have one partition per day.
    assert text.count("1 partition\n") == len(TRAINING_STAGES), text
    assert text.count("100% filled") == len(TRAINING_STAGES), text
    assert "365 partitions" in text
    assert "Never materialized" not in text and "Failed" not in text
    assert f"Asset checks\n{passed}" in text
    assert re.search(rf"^{january_model()['algorithm']['kind']}$", text, flags=re.M)  # the model's kind badge
    # Upstream features and the flights source are drawn as links into their groups.
    for upstream in ("flights", "flight_schedule", "origin_weather_eve", "disruption_history",
                     "aircraft_and_destination"):
        assert re.search(rf"^{upstream}$", text, flags=re.M), upstream


def test_asset_group_list_names_each_stage_with_its_partitions(served, browser):
    """The group's list tab: each stage by name, with how many of its partitions are materialized."""
    def listed(text: str) -> bool:
        rows = asset_rows(text)
        return len(rows) == len(STAGES) and all(re.search(r"\n\d+ partitions?$", row) for row in rows.values())

    text = open_and_wait(served, browser, f"locations/{LOCATION}/asset-groups/{MODEL}/list", listed,
                         "the five assets of the group with their status", "group-list")
    keep_screenshot(served, browser, f"{MODEL}-group-list")

    rows = asset_rows(text)
    assert set(rows) == {f"{MODEL} / {stage}" for stage in STAGES}, text
    for stage in TRAINING_STAGES:
        row = rows[f"{MODEL} / {stage}"]
        # Status column: "All" materialized, then 0 missing, 0 failed, 0 in progress, of "1 partition".
        assert re.search(r"\nAll\n0\n0\n0\n1 partition$", row), (stage, row)
    for stage in DAILY_STAGES:
        row = rows[f"{MODEL} / {stage}"]
        # SCORE_DAYS materialized, the rest of the year missing, none failed or in progress.
        assert re.search(rf"\n{SCORE_DAYS}\n{365 - SCORE_DAYS}\n0\n0\n365 partitions$", row), (stage, row)


def test_evaluation_page_shows_materialization_and_gate_checks(served, browser):
    """The evaluation asset: its latest materialization (the training run), its metrics, its gate checks."""
    evaluation = served.group_nodes()["evaluation"]
    latest = evaluation["assetMaterializations"][0]
    checks = served.evaluation_checks()
    assert set(GATE_CHECKS) <= set(checks), checks

    def overview(text: str) -> bool:
        return ("Latest materialization" in text and latest["partition"] in text and "Description" in text
                and f"Latest check results\n{len(checks)}\n" in text and "headline" in text
                and "Downstream assets" in text)

    text = open_and_wait(served, browser, f"assets/{MODEL}/evaluation", overview,
                         "the latest materialization, its checks and its metadata", "evaluation")
    keep_screenshot(served, browser, f"evaluation-{MODEL}")
    assert browser.evaluate("document.title") == f"Assets | {MODEL} / evaluation"
    status = section(text, "Latest materialization", "Description")
    # A green "... ago" badge with the training run's partition key, and the count of passed checks.
    assert re.search(rf"\n[^\n]+ ago\n{re.escape(latest['partition'])}\nLatest check results\n{len(checks)}\n",
                     status), status
    assert latest["partition"] == served.chain.training_run
    assert served.chain.champion.model_version in text  # the model it evaluated is the one deployed
    assert re.search(r"^gate\n\s*\n[^\n]+\n\s*\npassed$", text, flags=re.M), text
    assert re.search(r"^roc_auc\n\s*\n[^\n]+\n\s*\n0\.\d{1,4}$", text, flags=re.M), text
    upstream = section(text, "Upstream assets", "Downstream assets")
    assert f"{MODEL} / model" in upstream and f"{MODEL} / snapshot" in upstream, upstream
    assert f"Downstream assets\n{MODEL} / deployment" in text

    def checks_listed(text: str) -> bool:
        return (all(f"{check}\n{check}\nSucceeded" in text for check in checks)
                and "Evaluation result\nPassed" in text
                and re.search(r"Latest execution\s+[^\n]*money", text) is not None)

    text = open_and_wait(served, browser, f"assets/{MODEL}/evaluation?view=checks&checkDetail=money_floor",
                         checks_listed, "every check succeeded, and money_floor's details", "evaluation-checks")
    keep_screenshot(served, browser, f"evaluation-{MODEL}-checks")
    assert f"Checks ({len(checks)})" in text
    for check in GATE_CHECKS:
        assert f"\n{check}\n{check}\nSucceeded\n" in text, check
    pane = text.index("Execute\nOverview")  # the selected check's pane: its name, then its Execute button
    assert text[:pane].endswith("\nmoney_floor\n"), text
    detail = text[pane:]
    assert "This is a blocking asset check." in detail
    # e.g. "test money 503,315 USD ≥ floor -1,000,000,000 USD"
    assert re.search(r"Latest execution\s+[^\n]*money[^\n]*USD", detail), detail
    assert "Evaluation result\nPassed" in detail


def test_evaluation_page_shows_the_money_headline_with_an_inline_plot(served, browser):
    """The evaluation's page shows, without a click, the money with its interval, the threshold, the gate's verdict
    and a plot of money by threshold drawn inline (Dagster renders a markdown entry under 1,000 characters)."""
    summary = served.chain.evaluation
    money, threshold, window, verdict = headline_parts(summary)
    assert money.startswith(f"{round(summary.test.money):,} {summary.currency} (95% interval ")
    assert threshold == f"threshold {summary.threshold:.3f}" and verdict == "gate passed"

    def shown(text: str) -> bool:
        return money in text and browser.evaluate(_INLINE_PLOTS) > 0

    text = open_and_wait(served, browser, f"assets/{MODEL}/evaluation", shown,
                         "the headline entry with its inline plot", "evaluation-headline")
    # the headline's row: its key, its time, then the money, the threshold and window, the verdict, the caption
    assert re.search(rf"^headline\n\s*\n[^\n]+\n\s*\n{re.escape(money)}\s+at {re.escape(threshold)}, "
                     rf"{re.escape(window)}\s+{re.escape(verdict)}\s+{re.escape(PLOT_CAPTION)}$", text, flags=re.M), text
    # every line of it shown whole: none is wider than its table cell
    clipped = browser.evaluate(_CLIPPED_HEADLINE_LINES)
    assert clipped == [], clipped
    assert "[Show Markdown]" in text  # the full report stays one click away; the headline needs none
    # an <img> with a data: URL, drawn (decoded, with a size), in the headline's own table cell
    images = browser.evaluate(
        "Array.from(document.images).filter(i => i.src.startsWith('data:image/svg+xml;base64,'))"
        ".map(i => ({w: i.naturalWidth, h: i.naturalHeight, alt: i.alt, done: i.complete,"
        " row: i.closest('tr') ? i.closest('tr').innerText.split('\\n')[0] : ''}))")
    assert images and all(image["done"] and image["w"] > 0 and image["h"] > 0 for image in images), images
    assert images[0]["alt"] == "money by threshold" and images[0]["row"] == "headline", images
    # no 16-digit floats or cents anywhere on the page
    assert not re.search(r"\d\.\d{7,}", text), re.search(r"\d\.\d{7,}", text)
    browser.evaluate("document.querySelector('img[src^=\"data:image/svg\"]').closest('tr')"
                     ".scrollIntoView({block: 'center'})")
    time.sleep(0.5)
    keep_screenshot(served, browser, f"evaluation-{MODEL}-headline")


# the headline's lines whose text reaches past the edge of the first ancestor that clips (overflow not visible)
_CLIPPED_HEADLINE_LINES = """
Array.from(document.querySelectorAll('tr')).filter(r => r.innerText.startsWith('headline'))
  .flatMap(r => Array.from(r.querySelectorAll('p'))).filter(p => {
    let clip = p.parentElement;
    while (clip && getComputedStyle(clip).overflowX === 'visible') clip = clip.parentElement;
    const edge = clip ? clip.getBoundingClientRect().right : window.innerWidth;
    const range = document.createRange();
    range.selectNodeContents(p);
    return range.getBoundingClientRect().right > edge + 1;
  }).map(p => p.innerText)
"""

_INLINE_PLOTS = ("Array.from(document.images).filter(i => i.src.startsWith('data:image/svg+xml;base64,') "
                 "&& i.complete && i.naturalWidth > 0).length")


def test_graphql_agrees_the_group_is_materialized(served):
    """The same server's GraphQL: the group's assets, their partitions and the runs that materialized them."""
    by_stage = served.group_nodes()
    assert sorted(by_stage) == sorted(STAGES)
    assert all(node["assetKey"]["path"] == [MODEL, stage] for stage, node in by_stage.items())
    assert {node["groupName"] for node in by_stage.values()} == {MODEL}

    training_run = served.run_id(training_job_name(MODEL))
    for stage in TRAINING_STAGES:
        node = by_stage[stage]
        assert node["partitionStats"] == {"numMaterialized": 1, "numPartitions": 1, "numFailed": 0,
                                          "numMaterializing": 0}, (stage, node)
        assert node["assetMaterializations"] == [{"runId": training_run, "partition": served.chain.training_run}]

    last_day = served.chain.score_window[1].isoformat()
    for stage, job in (("predictions", scoring_job_name(MODEL)), ("monitoring", scoring_job_name(MODEL)),
                       ("outcomes", outcomes_job_name(MODEL))):
        node = by_stage[stage]
        assert node["partitionStats"]["numMaterialized"] == SCORE_DAYS, (stage, node)
        assert node["partitionStats"]["numFailed"] == 0, (stage, node)
        assert node["assetMaterializations"] == [{"runId": served.run_id(job), "partition": last_day}], stage

    checks = {check["name"]: check for check in by_stage["evaluation"]["assetChecksOrError"]["checks"]}
    assert set(GATE_CHECKS) <= set(checks), sorted(checks)
    for name in GATE_CHECKS:
        assert checks[name]["blocking"] is True, checks[name]
    for check in checks.values():
        assert check["executionForLatestMaterialization"]["status"] == "SUCCEEDED", check
        assert check["executionForLatestMaterialization"]["evaluation"]["success"] is True, check


def test_model_page_lists_its_data_dependencies(served, browser):
    """The model asset's page: every source the model reads, its trust level, what reads it and the opt-in."""
    def listed(text: str) -> bool:
        return "Data dependencies" in text and "opt-in" in text and "weather\texternal_vendor" in text

    text = open_and_wait(served, browser, f"assets/{MODEL}/model", listed,
                         "the description's data dependencies table", "model-dependencies")
    keep_screenshot(served, browser, f"model-{MODEL}-dependencies")
    rows = {line.split("\t")[0]: line.split("\t") for line in text.splitlines()
            if line.split("\t")[0] in ("flights", "weather", "planes", "airports")}
    assert rows["flights"][1:5] == ["internal", "daily", "entity (rows, label, money)", "all"], rows["flights"]
    assert rows["flights"][5] == "not needed (internal)"
    assert rows["weather"][1:4] == ["external_vendor", "daily", "origin_weather_eve"], rows["weather"]
    assert rows["weather"][5].startswith("accepted by team:flight-ops-ds on "), rows["weather"]
    for reference in ("planes", "airports"):
        assert rows[reference][1:4] == ["external_vendor", "whole table", "aircraft_and_destination"], rows[reference]
