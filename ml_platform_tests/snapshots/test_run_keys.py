"""Which training runs a snapshot may be built for: the key must parse, leave training days and name this spec."""

from __future__ import annotations

import pytest

from ml_platform.errors import PlatformError
from ml_platform.partitions import training_run_key
from ml_platform.snapshots.build import TrainingRunError, check_run_matches_spec
from ml_platform.specs.models import ModelSpec
from ml_platform_tests.helpers import january_model

SPEC_HASH = "0123456789ab"


def model() -> ModelSpec:
    return ModelSpec.model_validate(january_model())


def test_the_specs_own_run_may_be_built():
    check_run_matches_spec(model(), training_run_key(model(), SPEC_HASH), SPEC_HASH)


def test_a_malformed_key_is_refused_as_a_platform_error():
    with pytest.raises(TrainingRunError, match="^training run 'latest' of 'flight_delay' cannot be built: ") as raised:
        check_run_matches_spec(model(), "latest", SPEC_HASH)
    assert isinstance(raised.value, PlatformError)


def test_a_run_of_another_spec_revision_names_the_run_of_this_one():
    other = training_run_key(model(), "ba9876543210")
    with pytest.raises(TrainingRunError) as raised:
        check_run_matches_spec(model(), other, SPEC_HASH)
    assert str(raised.value) == (
        f"training run '{other}' was defined by another revision of the spec of 'flight_delay' and has no stored "
        f"snapshot; the current spec defines run '{training_run_key(model(), SPEC_HASH)}' for the same cut-off")
