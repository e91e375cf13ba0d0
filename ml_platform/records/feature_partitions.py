"""One feature partition committed to a Delta table by one process (the cluster configuration's feature tables)."""

from __future__ import annotations

import datetime as dt

from ml_platform.records.base import Record


class FeaturePartitionCommit(Record):
    """What a worker computed and committed: the partition, its rows, the table version, where and when."""

    feature_set: str
    first_day: dt.date
    last_day: dt.date
    rows: int
    table_version: int  # the Delta table's version that holds the partition's rows
    started_at: float  # seconds since the epoch: the computation began
    committed_at: float  # the version index's commit returned (the rows were committed just before)
    pid: int
    host: str
