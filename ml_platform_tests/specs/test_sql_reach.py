"""Spec SQL reads only its declared sources and the platform's relations: attempted escapes (files, URLs, settings,
other databases, undeclared sources) are refused with an exact message, and the SQL the platform needs still passes."""

from __future__ import annotations

import pytest

from ml_platform.specs.sql_reach import TABLE_FUNCTIONS, refuse_escapes

# What a feature set of `flights` that reads `weather` may read.
ALLOWED = {"entity", "flights", "weather", "source.flights", "source.weather", "history.flights", "history.weather"}
LISTING = "entity, flights, history.flights, history.weather, source.flights, source.weather, weather"


def table(name: str, listing: str = LISTING) -> str:
    return (f"reads '{name}', which is not among the tables it may read ({listing}): spec SQL reads only its "
            f"declared sources, never files, URLs or other databases")


def table_function(name: str) -> str:
    return (f"calls table function '{name}', which can reach files, URLs, settings or other databases; spec SQL may "
            f"call only the table functions generate_series, range, unnest")


def function(name: str, reason: str) -> str:
    return f"calls '{name}', which {reason}; spec SQL may compute only from the rows of its declared sources"


ESCAPES = [
    # files through DuckDB's replacement scans and table functions, in every place a FROM can hide
    ("SELECT * FROM 'secrets.csv'", table("secrets.csv")),
    ("SELECT * FROM '/etc/passwd'", table("/etc/passwd")),
    ("SELECT * FROM 's3://bucket/data.parquet'", table("s3://bucket/data.parquet")),
    ("SELECT * FROM read_parquet('x.parquet')", table_function("read_parquet")),
    ("SELECT * FROM read_csv('x.csv')", table_function("read_csv")),
    ("SELECT * FROM read_csv_auto('x.csv')", table_function("read_csv_auto")),
    ("SELECT * FROM read_json('x.json')", table_function("read_json")),
    ("SELECT * FROM read_json_auto('x.json')", table_function("read_json_auto")),
    ("SELECT * FROM read_text('/etc/hostname')", table_function("read_text")),
    ("SELECT * FROM read_blob('/etc/hostname')", table_function("read_blob")),
    ("SELECT * FROM parquet_scan('x.parquet')", table_function("parquet_scan")),
    ("SELECT * FROM sniff_csv('x.csv')", table_function("sniff_csv")),
    ("SELECT * FROM glob('*')", table_function("glob")),
    ("SELECT * FROM parquet_metadata('x.parquet')", table_function("parquet_metadata")),
    ("SELECT * FROM iceberg_scan('lake/t')", table_function("iceberg_scan")),
    ("SELECT * FROM delta_scan('lake/t')", table_function("delta_scan")),
    ("SELECT * FROM sqlite_scan('other.db', 't')", table_function("sqlite_scan")),
    ("SELECT * FROM postgres_scan('host=db', 'public', 't')", table_function("postgres_scan")),
    ("SELECT * FROM query('SELECT * FROM read_csv(''x.csv'')')", table_function("query")),
    ("SELECT * FROM query_table('secret')", table_function("query_table")),
    ("WITH leak AS (SELECT * FROM read_parquet('x.parquet')) SELECT flight_id FROM entity, leak",
     table_function("read_parquet")),
    ("SELECT flight_id FROM entity, LATERAL (SELECT * FROM read_parquet('x.parquet'))", table_function("read_parquet")),
    ("SELECT flight_id FROM entity WHERE origin IN (SELECT * FROM read_csv('x.csv'))", table_function("read_csv")),
    ("SELECT flight_id, (SELECT count(*) FROM glob('*')) AS n FROM entity", table_function("glob")),
    ("SELECT flight_id FROM entity UNION ALL SELECT * FROM read_csv('x.csv')", table_function("read_csv")),
    ("SELECT * FROM range((SELECT count(*) FROM read_csv('x.csv')))", table_function("read_csv")),
    ("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n FROM r, read_csv('x.csv')) SELECT * FROM r",
     table_function("read_csv")),
    # the environment, the session, the catalog
    ("SELECT getenv('HOME') AS home", function("getenv", "reads the process environment")),
    ("SELECT current_setting('home_directory') AS h", function("current_setting", "reads the session's settings")),
    ("SELECT getvariable('token') AS t", function("getvariable", "reads the session's variables")),
    ("SELECT flight_id FROM entity WHERE CURRENT_SETTING('threads') > 1",
     function("current_setting", "reads the session's settings")),
    ("SELECT * FROM duckdb_settings()", table_function("duckdb_settings")),
    ("SELECT * FROM duckdb_tables()", table_function("duckdb_tables")),
    ("SELECT * FROM pragma_database_list()", table_function("pragma_database_list")),
    ("SELECT * FROM (DESCRIBE entity)",
     "uses DESCRIBE, SUMMARIZE or SHOW in a FROM clause, which spec SQL may not: it reads only its declared sources"),
    ("SELECT * FROM (SUMMARIZE 'x.csv')",
     "uses DESCRIBE, SUMMARIZE or SHOW in a FROM clause, which spec SQL may not: it reads only its declared sources"),
    ("SELECT nextval('ids') AS id", function("nextval", "changes a sequence of the database")),
    ("SELECT pg_typeof(1) AS t", function("pg_typeof", "reads the catalog (PostgreSQL compatibility functions)")),
    ("SELECT other_db.main.my_macro(1) AS x",
     "calls 'other_db.main.my_macro', a function of another schema or database; spec SQL calls only DuckDB's "
     "functions and its declared functions"),
    # other databases and the platform's own tables the spec did not declare
    ("SELECT * FROM other_db.main.t", table("other_db.main.t")),
    ("SELECT * FROM warehouse.source.flights", table("warehouse.source.flights")),
    ("SELECT * FROM registry.models", table("registry.models")),
    ("SELECT * FROM predictions.flight_delay", table("predictions.flight_delay")),
    ("SELECT * FROM history.planes", table("history.planes")),
    ("SELECT flight_id FROM entity JOIN planes USING (tailnum)",
     "unknown table 'planes' (sources it may read: entity, flights, weather)"),
    ("WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a",
     "unknown table 'b' (sources it may read: entity, flights, weather)"),
    # statements other than one SELECT
    ("COPY (SELECT * FROM entity) TO 'out.csv'", "must be a SELECT statement, found COPY"),
    ("EXPORT DATABASE 'out'", "must be a SELECT statement, found EXPORT"),
    ("ATTACH 'other.db' AS other_db", "must be a SELECT statement, found ATTACH"),
    ("DETACH other_db", "must be a SELECT statement, found DETACH"),
    ("INSTALL httpfs", "must be a SELECT statement, found LOAD"),
    ("LOAD httpfs", "must be a SELECT statement, found LOAD"),
    ("SET enable_external_access = true", "must be a SELECT statement, found SET"),
    ("PRAGMA database_list", "must be a SELECT statement, found PRAGMA"),
    ("CALL duckdb_settings()", "must be a SELECT statement, found CALL"),
    ("CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')", "must be a SELECT statement, found CREATE"),
    ("SELECT 1 AS x; SELECT * FROM read_csv('x.csv')", "must be exactly one SELECT statement, found 2 statements"),
]


@pytest.mark.parametrize("sql, message", ESCAPES, ids=[sql[:60] for sql, _ in ESCAPES])
def test_an_escape_is_refused_with_its_exact_message(sql, message):
    assert refuse_escapes(sql, ALLOWED) == message


def test_the_list_covers_at_least_the_escapes_the_issue_names():
    assert len(ESCAPES) >= 15


EXPRESSION_ESCAPES = [
    ("dep_delay > (SELECT avg(arr_delay) FROM planes)", {"flights"},
     "unknown table 'planes' (sources it may read: flights)"),
    ("EXISTS (SELECT 1 FROM read_csv('x.csv'))", {"flights"}, table_function("read_csv")),
    ("getenv('HOME') IS NULL", {"flights"}, function("getenv", "reads the process environment")),
    ("hour > (SELECT max(hour) FROM flights)", set(), "unknown table 'flights' (sources it may read: none)"),
    ("make_date(year, month, day) FROM read_csv('x.csv')", set(), "must be one SQL expression, not a query"),
    ("1; COPY entity TO 'x.csv'", set(), "must be one SQL expression, not several statements"),
]


@pytest.mark.parametrize("expression, allowed, message", EXPRESSION_ESCAPES,
                         ids=[expression[:50] for expression, _, _ in EXPRESSION_ESCAPES])
def test_an_escape_in_an_expression_is_refused(expression, allowed, message):
    assert refuse_escapes(expression, allowed, expression=True) == message


READS_ONLY_WHAT_IT_MAY = [
    "SELECT flight_id FROM entity",
    "SELECT flight_id FROM ENTITY JOIN Weather ON weather.origin = entity.origin",
    "SELECT * FROM source.flights JOIN history.weather USING (origin)",
    "WITH days AS (SELECT * FROM range(DATE '2013-01-01', DATE '2013-01-08', INTERVAL 1 DAY) AS t(day)) "
    "SELECT flight_id FROM entity, days",
    "SELECT * FROM generate_series(1, 3) AS t(n)",
    "SELECT * FROM unnest([1, 2, 3]) AS t(n)",
    "SELECT flight_id FROM entity, LATERAL (SELECT count(*) FROM history.flights h WHERE h.origin = entity.origin)",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
    "WITH a AS (SELECT * FROM weather), b AS (SELECT * FROM a) SELECT flight_id FROM entity JOIN b USING (origin)",
    "SELECT flight_id, list_transform([1, 2], x -> x + hour) AS l, count(*) OVER (PARTITION BY origin) AS n "
    "FROM entity QUALIFY row_number() OVER (PARTITION BY flight_id) = 1",
    "SELECT * FROM entity UNPIVOT (v FOR k IN (hour, minute))",
    "SELECT read_csv_note FROM (VALUES ('read_csv(''x.csv'')')) AS t(read_csv_note)",
]


@pytest.mark.parametrize("sql", READS_ONLY_WHAT_IT_MAY)
def test_sql_that_reads_only_what_it_declares_passes(sql):
    assert refuse_escapes(sql, ALLOWED) is None


def test_a_cte_name_is_in_scope_only_where_it_is_declared():
    # a CTE in a subquery does not make its name readable outside it
    sql = "SELECT * FROM (WITH secret AS (SELECT 1 AS x) SELECT * FROM secret) AS s, secret"

    assert refuse_escapes(sql, ALLOWED) == "unknown table 'secret' (sources it may read: entity, flights, weather)"


def test_every_allowed_table_function_reads_only_its_arguments():
    assert set(TABLE_FUNCTIONS) == {"range", "generate_series", "unnest"}
