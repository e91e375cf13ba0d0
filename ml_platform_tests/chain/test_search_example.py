"""End to end: the example model with a declared search (model_specs/flight_delay_search.yaml) through the demo's
chain of Dagster runs, as `ml-platform demo --model flight_delay_search` runs it: 24 trials judged in money on the
validation window find more money than the spec's own params, the gate judges the chosen model on the test window,
and reproduce retrains it byte for byte without searching."""

from __future__ import annotations

import pytest

from ml_platform.chain.model_chain import run_chain
from ml_platform.provenance.reproduce import reproduce
from ml_platform.storage import registry
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.helpers import SPECS, load_yaml

pytestmark = pytest.mark.slow

NAME = "flight_delay_search"


def test_the_search_example_beats_its_hand_set_params_and_is_judged_on_test(make_project, dagster_home):
    document = load_yaml(SPECS / f"{NAME}.yaml")
    project = make_project({NAME: document})

    result = run_chain(project, NAME, score_days=1, say=lambda line: None)

    assert all(run.success for run in result.runs), [run.failures for run in result.runs]
    with open_warehouse(project.storage.warehouse) as connection:
        model = registry.models.get(connection, NAME, result.training_run)
    search = model.card.search
    assert len(search.trials) == document["algorithm"]["search"]["trials"] >= 20
    assert not search.stopped_by_time_budget
    baseline, chosen = search.baseline(), search.best()
    assert baseline.number == 0 and baseline.parameters["num_leaves"] == document["algorithm"]["params"]["num_leaves"]
    assert chosen.validation_money > baseline.validation_money  # the search found more money than the hand-set
    evaluation = result.evaluation
    assert evaluation.model_version == model.model_version and evaluation.search == search
    assert evaluation.validation.money == pytest.approx(chosen.validation_money, abs=1e-6)
    assert evaluation.test.window == ("2013-03-16", "2013-03-31")  # the gate judged it on the test window
    assert set(dict(evaluation.gate.checks())) >= {"money_floor", "roc_auc_floor", "no_leakage"}
    assert result.blocked == (not evaluation.gate_passed)
    reproduced = reproduce(project, model.model_version)
    assert reproduced.identical and reproduced.reproduced_card.search == search
