"""The run tags Dagster reads to run one partition range in a single run.

Written for Dagster 1.13.27: `ASSET_PARTITION_RANGE_START_TAG` and `ASSET_PARTITION_RANGE_END_TAG` of
dagster._core.storage.tags (`dagster/asset_partition_range_start` and `..._end`). Re-check on another version
(ml_platform_tests/adapters/test_dagster_version.py).
"""

from __future__ import annotations

import datetime as dt

from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG


def partition_range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Tags that make a run materialize the daily partitions first to last (inclusive) in one go."""
    return {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}
