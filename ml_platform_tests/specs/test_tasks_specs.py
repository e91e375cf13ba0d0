"""The task fields of the spec language: a spec that does not use them keeps its payload and hash; the support
table and the money inputs a value expression reads."""

from __future__ import annotations

import shutil

import pytest

from ml_platform.features.library import load_catalog
from ml_platform.specs.models import LabelSpec, ModelSpec, OffsetRange
from ml_platform.specs.tasks import DECISIONS, GATE_METRICS, SUPPORT, value_inputs
from ml_platform_tests.helpers import REPO_ROOT, SPECS, january_model
from ml_platform_tests.specs.helpers import load, make_specs

DEMO_SPEC_HASH = "5b8c306affc0"  # the demo's spec hash before tasks existed: it must not move


def test_the_demo_spec_keeps_its_hash_and_payload():
    catalog = load_catalog(SPECS, SPECS.parent)
    model = catalog.models["flight_delay"]
    payload = catalog.model_payload(model)["model"]

    assert catalog.spec_hash(model) == DEMO_SPEC_HASH
    assert set(payload["label"]) == {"task", "expression"}
    assert set(payload["money"]) == {"currency", "outcomes"}
    assert "metrics" not in payload["gate"]


def test_a_spec_using_the_new_fields_dumps_them():
    document = january_model(label={"task": "regression", "expression": "air_time",
                                    "objective": {"kind": "quantile", "alpha": 0.8}},
                             money={"currency": "USD", "decision": {"kind": "quantity", "offset": {
                                 "min": -5, "max": 5, "step": 2.5}}, "value": "-abs(decision - label)"},
                             gate={"min_money": 0, "metrics": {"pinball": {"max": 9}}})
    dumped = ModelSpec.model_validate(document).model_dump(mode="json")

    assert dumped["label"]["objective"] == {"kind": "quantile", "alpha": 0.8, "delta": None, "variance_power": None}
    assert set(dumped["money"]) == {"currency", "decision", "value"}
    assert dumped["gate"]["metrics"] == {"pinball": {"min": None, "max": 9.0}}


def test_every_task_has_an_algorithm_decisions_and_metrics():
    for task in ("binary_classification", "regression", "multiclass"):
        assert any(task in tasks for tasks in SUPPORT.values())
        assert DECISIONS[task] and GATE_METRICS[task]
    assert SUPPORT["lightgbm"]["regression"] == ("l2", "l1", "huber", "poisson", "tweedie", "quantile")


def test_the_objective_defaults_to_l2_and_binary_and_multiclass_name_theirs():
    assert LabelSpec(task="regression", expression="x").objective_kind() == "l2"
    assert LabelSpec(task="binary_classification", expression="x").objective_kind() == "binary"
    assert LabelSpec(task="multiclass", expression="x", classes=["a", "b", "c"]).objective_kind() == "multiclass"


def test_offsets_tried_are_the_whole_range_without_drift():
    assert OffsetRange(min=-1, max=1, step=0.1).values()[-1] == 1.0
    assert len(OffsetRange(min=-1, max=1, step=0.1).values()) == 21
    with pytest.raises(ValueError, match="at most 10,000"):
        OffsetRange(min=0, max=1, step=0.00001)


def test_money_inputs_are_the_entity_columns_the_value_reads():
    document = january_model(label={"task": "regression", "expression": "air_time"},
                             money={"currency": "USD", "decision": {"kind": "quantity", "offset": {
                                 "min": 0, "max": 1, "step": 1}},
                                    "value": "CASE WHEN decision < label THEN -2 * (label - decision) * coalesce("
                                             "\"distance\", 1) ELSE -0.5 * (decision - label) - dep_delay END"},
                             gate={"min_money": 0})

    assert value_inputs(ModelSpec.model_validate(document)) == ["dep_delay", "distance"]
    assert value_inputs(ModelSpec.model_validate(january_model())) == []


@pytest.mark.parametrize("name", ["air_time_plan", "flight_outcome"])
def test_the_example_specs_are_valid_beside_the_repository_specs(name, tmp_path):
    root = make_specs(tmp_path, {}, repository_model=True)
    shutil.copyfile(REPO_ROOT / "model_specs" / f"{name}.yaml", root / "model_specs" / f"{name}.yaml")

    catalog = load(root)

    assert catalog.models[name].label.task in ("regression", "multiclass")
    assert catalog.spec_hash(catalog.models["flight_delay"]) == DEMO_SPEC_HASH
