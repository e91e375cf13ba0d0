"""Snapshot files on January 2013: written a range of days at a time to the same bytes, read by split and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_platform.features.compute import feature_matrix_sql
from ml_platform.snapshots.columns import SplitRows, sample_split
from ml_platform.features.compute import day_ranges
from ml_platform.snapshots.writing import split_sql, write_rows
from ml_platform.features.library import load_catalog
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.evaluation.january import MODEL, january_project

# drives chains of Dagster runs: the full suite only (`pytest -m "not slow"` leaves it out)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def january(tmp_path_factory):
    """The January project's warehouse, catalog and model, and a snapshot file written from them."""
    folder = tmp_path_factory.mktemp("snapshot_files")
    project = january_project(folder / "project")
    catalog = load_catalog(project.specs_dir, project.root)
    model = catalog.models[MODEL]
    path = folder / "rows.parquet"
    with open_warehouse(project.storage.warehouse) as connection:
        write_rows(connection, catalog, model, model.split, path)
    return project, catalog, model, path


def test_day_ranges_cover_the_window_and_hold_at_most_the_rows_asked(january):
    project, catalog, model, _ = january
    start, end = model.split.train.start, model.split.test.end
    with open_warehouse(project.storage.warehouse) as connection:
        per_day = dict(connection.execute(
            "SELECT partition_date, count(*) FROM source.flights GROUP BY 1").fetchall())
        ranges = {rows: day_ranges(connection, catalog, "flights", start, end, rows) for rows in (2000, 10, 10 ** 9)}
    for rows, found in ranges.items():
        assert found[0][0] == start and found[-1][1] == end
        assert all((later[0] - earlier[1]).days == 1 for earlier, later in zip(found, found[1:]))
        for first, last in found:
            held = sum(count for day, count in per_day.items() if first <= day <= last)
            assert held <= rows or first == last, (rows, first, last, held)
    assert len(ranges[10]) == (end - start).days + 1  # every day has more than 10 flights: each is a range
    assert len(ranges[10 ** 9]) == 1


def test_rows_are_written_in_day_and_key_order_to_the_same_bytes_however_the_days_are_grouped(january, tmp_path):
    project, catalog, model, path = january
    split = model.split
    chunked = tmp_path / "chunked.parquet"
    with open_warehouse(project.storage.warehouse) as connection:
        write_rows(connection, catalog, model, split, chunked, chunk_rows=2000)
        assert len(day_ranges(connection, catalog, "flights", split.train.start, split.test.end, 2000)) > 10
        expected = connection.execute(
            split_sql(split, feature_matrix_sql(catalog, model, split.train.start, split.test.end, True))).df()
        written = connection.execute(f"SELECT * FROM read_parquet('{path}')").df()
        leftover = connection.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'snapshot_rows'"
                                      ).fetchall()
    assert chunked.read_bytes() == path.read_bytes()
    # the rows of the feature matrix in one query, in its order: by day, then flight
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    assert list(written["split"].unique()) == ["train", "validation", "test"]
    assert leftover == [(0,)]


def test_a_split_is_read_a_column_at_a_time_in_the_files_order(january):
    project, _, _, path = january
    with open_warehouse(project.storage.warehouse) as connection:
        whole = connection.execute(f"SELECT * FROM read_parquet('{path}')").df()
        rows = SplitRows.read(connection, path, "validation")
        carriers = rows.column("carrier_code")
    validation = whole[whole["split"] == "validation"].reset_index(drop=True)
    assert len(rows) == len(validation) > 0
    assert rows.label.tolist() == validation["label"].astype(int).tolist()
    pd.testing.assert_series_equal(carriers, validation["carrier_code"])


def test_a_sample_of_a_split_is_fixed_by_its_seed_and_keeps_the_files_order(january):
    project, _, _, path = january
    names = ["flight_id", "label", "departure_hour"]
    with open_warehouse(project.storage.warehouse) as connection:
        train = connection.execute(f"SELECT {', '.join(names)} FROM read_parquet('{path}') "
                                   f"WHERE split = 'train'").df()
        sample, available = sample_split(connection, path, "train", names, 500, seed=13)
        again, _ = sample_split(connection, path, "train", names, 500, seed=13)
        other, _ = sample_split(connection, path, "train", names, 500, seed=14)
        every, all_available = sample_split(connection, path, "train", names, len(train), seed=13)
        with pytest.raises(ValueError) as error:
            sample_split(connection, path, "training", names, 500, seed=13)
    assert available == all_available == len(train) > 500
    assert len(sample) == sample["flight_id"].nunique() == 500
    positions = pd.Index(train["flight_id"]).get_indexer(sample["flight_id"])
    assert (positions >= 0).all() and (np.diff(positions) > 0).all()  # training rows, in the file's order
    pd.testing.assert_frame_equal(sample, train.iloc[positions].reset_index(drop=True))
    pd.testing.assert_frame_equal(again, sample)
    assert set(other["flight_id"]) != set(sample["flight_id"])
    pd.testing.assert_frame_equal(every, train)  # no more rows than asked for: every row, as they are
    assert str(error.value) == ("unknown snapshot split(s) 'training'; a snapshot has the splits train, validation, "
                                "test")


def test_an_unknown_split_is_refused_when_reading_columns(january):
    project, _, _, path = january
    with open_warehouse(project.storage.warehouse) as connection, pytest.raises(ValueError, match="'valid'"):
        SplitRows.read(connection, Path(path), "valid")
