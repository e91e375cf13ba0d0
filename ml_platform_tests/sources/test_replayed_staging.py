"""Inside a replay (`reuse.reused`) a source file's raw rows are read once and each day is staged from them: the
same rows, types and order as staging each day from the file, and a changed file is read again."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb

from ml_platform.features.library import load_catalog
from ml_platform.reuse import reused
from ml_platform.sources import loading
from ml_platform.sources.loading import source_file, stage_source
from ml_platform.specs.models import FileLocation
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.helpers import REPO_ROOT

DAYS = [dt.date(2013, 3, 4), dt.date(2013, 3, 5), dt.date(2013, 7, 1)]


def _staged(connection: duckdb.DuckDBPyConnection, source, root, day: dt.date) -> tuple[list, list]:
    staged, problems = stage_source(connection, source, root, day, day)
    assert not problems, problems
    relation = connection.sql(f"SELECT * FROM {staged}")
    rows = [relation.types, relation.fetchall()]
    connection.execute(f"DROP TABLE {staged}")
    return rows


def test_a_replay_stages_each_day_from_one_read_of_the_file_with_the_same_rows(tmp_path, monkeypatch):
    catalog = load_catalog(REPO_ROOT / "model_specs", REPO_ROOT)
    reads: list[str] = []
    raw_relation_sql = loading._raw_relation_sql
    monkeypatch.setattr(loading, "_raw_relation_sql",
                        lambda source, path, scratch: reads.append(source.name) or raw_relation_sql(source, path,
                                                                                                      scratch))
    checked: list[str] = []  # the spec's SQL reach check: each day alone, once per spec in a replay
    require_contained_source = loading.require_contained_source
    monkeypatch.setattr(loading, "require_contained_source",
                        lambda source: checked.append(source.name) or require_contained_source(source))
    with open_warehouse(tmp_path / "warehouse.duckdb") as connection:
        for name in ("flights", "weather"):  # a zipped CSV and a CSV
            source = catalog.sources[name]
            alone = [_staged(connection, source, REPO_ROOT, day) for day in DAYS]
            assert reads.count(name) == len(DAYS) and all(rows[1] for rows in alone)
            with reused():
                replayed = [_staged(connection, source, REPO_ROOT, day) for day in DAYS]
            assert reads.count(name) == len(DAYS) + 1  # the file read once for the three days
            assert checked.count(name) == len(DAYS) + 1
            assert replayed == alone  # column types, values and order of every row
            assert connection.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?",
                                      [loading.REPLAYED_TEXT]).fetchall() == [(0,)]


def test_a_replay_reads_a_changed_file_again(tmp_path):
    """The file's bytes are part of the key: a file rewritten during a replay is read anew."""
    catalog = load_catalog(REPO_ROOT / "model_specs", REPO_ROOT)
    packaged = catalog.sources["weather"]
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    copied = root / "data" / "weather.csv"
    shutil.copyfile(source_file(packaged, REPO_ROOT), copied)
    source = packaged.model_copy(update={"location": FileLocation(kind="file", path="data/weather.csv",
                                                                  format="csv", null_string="NA")})
    day = DAYS[0]
    with open_warehouse(tmp_path / "warehouse.duckdb") as connection, reused():
        before = _staged(connection, source, root, day)
        lines = copied.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines[1:] if ",2013,3,4," not in line]
        assert before[1] and len(kept) < len(lines) - 1, "the test's day must be in the file"
        copied.write_text(lines[0] + "".join(kept), encoding="utf-8")
        assert _staged(connection, source, root, day) == [before[0], []]
        assert _staged(connection, source, root, DAYS[1])[1]  # the other days are still there
