"""`slices` superseded `slice_column` without changing the hash of any spec written before it."""

from __future__ import annotations

from ml_platform.features.library import load_catalog
from ml_platform.specs.models import ModelSpec
from ml_platform_tests.helpers import REPO_ROOT, SPECS, january_model


def test_the_demo_spec_keeps_its_hash_with_slice_column_as_the_alias_of_slices():
    catalog = load_catalog(SPECS, REPO_ROOT)
    model = catalog.models["flight_delay"]
    assert model.slice_column == "carrier" and model.slices == [] and model.slice_names() == ["carrier"]
    assert "slices" not in model.model_dump(mode="json")  # empty slices stay out of what the hash reads
    assert catalog.spec_hash(model) == "5b8c306affc0"  # the hash the demo's runs, README and benchmarks name


def test_slices_enter_the_hash_when_given_and_name_the_slices_in_order():
    catalog = load_catalog(SPECS, REPO_ROOT)
    document = january_model(slices=["origin", "carrier"])
    del document["slice_column"]
    model = ModelSpec.model_validate(document)
    assert model.slice_names() == ["origin", "carrier"]
    assert model.model_dump(mode="json")["slices"] == ["origin", "carrier"]
    reordered = ModelSpec.model_validate({**document, "slices": ["carrier", "origin"]})
    assert catalog.spec_hash(model) != catalog.spec_hash(reordered)  # the order is the report's order
    no_slices = ModelSpec.model_validate({key: value for key, value in document.items() if key != "slices"})
    assert no_slices.slice_names() == [] and "slices" not in no_slices.model_dump(mode="json")
