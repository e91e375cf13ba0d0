"""The platform's clock: the wall clock, or the simulated moment a replay sets; registries write with it."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from ml_platform import clock
from ml_platform.storage import registry


def test_the_clock_is_the_wall_clock_unless_a_moment_is_simulated():
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert before <= clock.now() <= dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    eve = dt.datetime(2013, 11, 4, 18, 0, 30, tzinfo=zoneinfo.ZoneInfo("America/New_York"))
    with clock.simulated(eve):
        assert clock.now() == registry.now() == dt.datetime(2013, 11, 4, 23, 0, 30)
        with clock.simulated(eve + dt.timedelta(hours=12)):
            assert clock.now() == dt.datetime(2013, 11, 5, 11, 0, 30)
        assert clock.now() == dt.datetime(2013, 11, 4, 23, 0, 30)
    assert clock.now().year >= 2026


def test_a_simulated_moment_needs_a_time_zone():
    with pytest.raises(ValueError, match="needs an aware time"):
        with clock.simulated(dt.datetime(2013, 11, 4, 18)):
            pass
    assert clock.now().year >= 2026
