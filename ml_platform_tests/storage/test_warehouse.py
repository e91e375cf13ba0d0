"""The warehouse connection: DuckDB capped at a share of the machine's memory, spilling inside the data folder."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ml_platform.storage.warehouse import MEMORY_LIMIT, SPILL_FOLDER, open_warehouse


def test_the_warehouse_caps_duckdb_memory_and_spills_into_the_data_folder(tmp_path):
    data_folder = tmp_path / "project" / ".ml_platform"
    with duckdb.connect() as reference:
        reference.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")  # what DuckDB makes of the share on this machine
        expected_limit = reference.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        default_limit = duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    with open_warehouse(data_folder / "warehouse.duckdb") as connection:
        limit, spill = connection.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchall()[0]
        # rows sorted into a table bigger than a small cap go to files in that folder instead of failing
        connection.execute("SET memory_limit = '100MB'")
        connection.execute("CREATE TEMP TABLE spilled AS SELECT range AS position, md5(range::VARCHAR) AS text "
                           "FROM range(3000000) ORDER BY text")
        rows = connection.execute("SELECT count(*), sum(position) FROM spilled").fetchall()
        files = connection.execute("SELECT path, size FROM duckdb_temporary_files()").fetchall()
    assert limit == expected_limit and limit != default_limit
    assert spill == str(data_folder / SPILL_FOLDER)
    assert rows == [(3_000_000, 3_000_000 * 2_999_999 // 2)]
    assert files and all(Path(path).parent == data_folder / SPILL_FOLDER for path, _ in files)
    assert sum(size for _, size in files) > 100 * 2 ** 20
