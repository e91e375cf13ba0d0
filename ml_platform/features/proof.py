"""The point-in-time proof: recompute stored feature values with every source cut at each row's prediction time.

The bulk computation cuts every source at the latest prediction time of the range it computes (compute.py); a row
of an earlier day could still reach rows or outcomes known only after its own prediction time. The proof takes a
deterministic sample of cuts (the distinct prediction times of each entity day: one per day when the rows' times
are their day, several when each row has its own time), binds `entity` to every entity row of that cut's day (window
functions over the entity see the same rows as in the bulk run) and every source to its relation cut there, runs the
same SQL and compares each feature of each row whose prediction time is the cut with what was stored: NaN equals
NaN, NULL equals NULL, floats compare exactly (feature SQL runs single-threaded, so its sums are reproducible). A
difference names the feature set, the feature, a key, both values and the source whose later rows changed it, found
by recomputing with one source at a time left uncut.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass, field

import duckdb

from ml_platform.errors import PlatformError
from ml_platform.features.functions import register_functions
from ml_platform.features.relations import (bind_entity, bind_sources, bound, history_bound, history_reads,
                                            readable_sources, unbind)
from ml_platform.features.timing import timestamp_literal
from ml_platform import names
from ml_platform.names import feature_table, quote
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec
from ml_platform.storage.lanes import lane_cursors, private_objects, run_on_cursors
from ml_platform.storage.warehouse import date_literal, single_threaded

# Cuts checked per proof when there are more: a seeded subset (every cut when there are fewer). A run of one day
# is proven whole. In a run of many days the bulk computation is exact for the last day of each range and a leak
# shows on the other days, so a small sample finds a systematic leak; each cut costs one run of the SQL over the
# sources (a year of the demo: about 0.1 s per feature set and cut here).
MAX_CUTS = 16
SHOWN = 3  # differing rows named per message


def _shown(value: object) -> str:
    """A value as SQL would print it: NULL for a missing one."""
    return "NULL" if value is None else str(value)


@dataclass(frozen=True)
class Difference:
    """One feature of one row whose stored value differs from its value recomputed at the row's prediction time."""

    feature: str
    key: str
    day: dt.date
    cut: dt.datetime
    stored: object
    recomputed: object
    sources: tuple[str, ...]  # sources whose rows after the cut change the value (empty: none alone does)

    def describe(self, feature_set: str) -> str:
        """One line naming everything a reader needs to find the leak."""
        blame = (f"source(s) {', '.join(self.sources)} (rows or outcomes known after the prediction time)"
                 if self.sources else "no single source alone (several together)")
        return (f"feature set '{feature_set}', feature '{self.feature}', key {self.key} (day {self.day}, prediction "
                f"time {self.cut:%Y-%m-%d %H:%M}): stored {_shown(self.stored)}, recomputed with every source cut at "
                f"the prediction time {_shown(self.recomputed)}; changed by {blame}")


@dataclass(frozen=True)
class Proof:
    """What one proof checked and found."""

    feature_set: str
    cuts_total: int  # distinct (entity day, prediction time) pairs in the range
    cuts: tuple[tuple[dt.date, dt.datetime], ...]  # the (entity day, prediction time) pairs checked
    rows: int  # entity rows compared
    seconds: float
    differing_rows: int
    differences: tuple[Difference, ...] = field(default=())

    @property
    def passed(self) -> bool:
        """True when every compared value was the same."""
        return self.differing_rows == 0

    def message(self) -> str:
        """The verdict in words."""
        checked = (f"{len(self.cuts)} of {self.cuts_total} prediction time(s), {self.rows:,} row(s), "
                   f"{self.seconds:.2f} s")
        if self.passed:
            return f"feature set '{self.feature_set}': every value equal with the sources cut ({checked})"
        return (f"point in time violated: {self.differing_rows:,} row(s) of feature set '{self.feature_set}' differ "
                f"when recomputed with every source cut at the row's prediction time ({checked}). "
                + " | ".join(difference.describe(self.feature_set) for difference in self.differences))

    def metadata(self) -> dict:
        """Plain metadata for the check: sample, size, duration."""
        return {"cuts_checked": len(self.cuts), "cuts_total": self.cuts_total, "rows_checked": self.rows,
                "seconds": round(self.seconds, 3), "differing_rows": self.differing_rows,
                "sample": ", ".join(f"{cut:%Y-%m-%d %H:%M}" for _, cut in self.cuts[:20])
                + (" ..." if len(self.cuts) > 20 else ""),
                "sampling": f"every cut up to {MAX_CUTS}, else the {MAX_CUTS} with the smallest "
                            f"sha256(seed + feature set | day | prediction time)"}


class PointInTimeError(PlatformError, RuntimeError):
    """A feature value changed when recomputed with the sources cut at its row's prediction time."""

    def __init__(self, proof: Proof):
        super().__init__(proof.message())
        self.proof = proof


def sample_cuts(feature_set: str, cuts: list, size: int = MAX_CUTS) -> list:
    """Every cut (a day, or a (day, prediction time) pair) when there are at most `size`, else a deterministic
    subset seeded by the feature set's name."""
    if len(cuts) <= size:
        return sorted(cuts)

    def text(cut) -> str:
        return "|".join(part.isoformat() for part in cut) if isinstance(cut, tuple) else cut.isoformat()

    ranked = sorted(cuts, key=lambda cut: hashlib.sha256(f"{feature_set}|{text(cut)}".encode()).hexdigest())
    return sorted(ranked[:size])


def _recompute(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec, day: dt.date,
               cut: dt.datetime, uncut: tuple[str, ...], into: str, history: list[str] | None = None) -> None:
    """Feature values of the day's entity rows with the sources cut at `cut` (but `uncut`); only those of the rows
    whose prediction time is `cut` are compared. `history`: the sources whose `history.` views are bound (by
    default those the SQL names), as `bind_sources` takes it; bound and read under the database's history lock."""
    bind_entity(connection, catalog, feature_set, f"partition_date = {date_literal(day)}")
    histories = history_reads(connection, feature_set) if history is None else history
    with history_bound(connection, histories):  # the views bound and read under the database's history lock
        bind_sources(connection, catalog, feature_set, cut, uncut, history=histories)
        with single_threaded(connection):
            connection.execute(f"CREATE OR REPLACE TEMP TABLE {into} AS {feature_set.sql}")


def _differing(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec, day: dt.date,
               cut: dt.datetime, recomputed: str, limit: int | None) -> list[tuple]:
    """(feature, key, stored, recomputed) of the stored values of the day's rows predicted at `cut` that differ
    from `recomputed`'s.

    One join of the stored and recomputed rows first counts the rows where any feature differs or a side lacks
    the row (a proof that holds ends there: one join per cut instead of one per feature); only when it finds some
    does a join per feature say which values differ."""
    keys = catalog.entity_rows(feature_set.entity).keys
    key_list = ", ".join(quote(key) for key in keys)
    at_cut = (f"SEMI JOIN (SELECT {key_list} FROM entity WHERE {names.PREDICTION_TIME_COLUMN} = "
              f"{timestamp_literal(cut)}) AS due USING ({key_list})")
    on = " AND ".join(f"stored.{quote(key)} = again.{quote(key)}" for key in keys)
    joined = (f"(SELECT * FROM {feature_table(feature_set.name)} {at_cut} WHERE partition_date = "
              f"{date_literal(day)}) AS stored FULL JOIN (SELECT * FROM {recomputed} {at_cut}) AS again ON {on}")
    unmatched = f"stored.{quote(keys[0])} IS NULL OR again.{quote(keys[0])} IS NULL"
    any_differs = " OR ".join([*(f"stored.{quote(name)} IS DISTINCT FROM again.{quote(name)}"
                                 for name in feature_set.features), unmatched])
    if not connection.execute(f"SELECT count(*) FROM {joined} WHERE {any_differs}").fetchall()[0][0]:
        return []
    key_text = " || '|' || ".join(f"CAST(coalesce(stored.{quote(k)}, again.{quote(k)}) AS VARCHAR)" for k in keys)
    parts = [
        f"SELECT '{name}' AS feature, {key_text} AS key, CAST(stored.{quote(name)} AS VARCHAR) AS stored, "
        f"CAST(again.{quote(name)} AS VARCHAR) AS recomputed FROM {joined} "
        f"WHERE stored.{quote(name)} IS DISTINCT FROM again.{quote(name)} OR {unmatched}"
        for name in feature_set.features]
    limited = f" LIMIT {limit}" if limit is not None else ""
    return connection.execute(f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY key, feature{limited}").fetchall()


def _blame(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec, day: dt.date,
           cut: dt.datetime, feature: str, key: str) -> tuple[str, ...]:
    """The sources that change the row's value when left uncut alone (the others cut)."""
    blamed = []
    for name in readable_sources(feature_set):
        _recompute(connection, catalog, feature_set, day, cut, (name,), "proof_uncut")
        changed = connection.execute(
            f"SELECT count(*) FROM ({_row_value_sql(catalog, feature_set, 'proof_uncut', feature, key)}) AS a, "
            f"({_row_value_sql(catalog, feature_set, 'proof_cut', feature, key)}) AS b "
            f"WHERE a.value IS DISTINCT FROM b.value").fetchall()[0][0]
        if changed:
            blamed.append(name)
    connection.execute("DROP TABLE IF EXISTS proof_uncut")
    return tuple(blamed)


def _row_value_sql(catalog: Catalog, feature_set: FeatureSetSpec, table: str, feature: str, key: str) -> str:
    keys = catalog.entity_rows(feature_set.entity).keys
    key_text = " || '|' || ".join(f"CAST({quote(k)} AS VARCHAR)" for k in keys)
    escaped = key.replace("'", "''")
    return f"SELECT {quote(feature)} AS value FROM {table} WHERE {key_text} = '{escaped}'"


def _check_cut(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec, day: dt.date,
               cut: dt.datetime, history: list[str] | None) -> tuple[int, list[tuple]]:
    """(the day's entity rows predicted at `cut`, their differing values as `_differing` lists them) of one cut,
    recomputed on `connection` (a cursor of the proof's connection or the connection itself)."""
    try:
        _recompute(connection, catalog, feature_set, day, cut, (), "proof_cut", history)
        rows = connection.execute(f"SELECT count(*) FROM entity WHERE {names.PREDICTION_TIME_COLUMN} = "
                                  f"{timestamp_literal(cut)}").fetchall()[0][0]
        return rows, _differing(connection, catalog, feature_set, day, cut, "proof_cut", None)
    finally:
        connection.execute("DROP TABLE IF EXISTS proof_cut")


def prove_feature_set(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec,
                      start: dt.date, end: dt.date, max_cuts: int = MAX_CUTS, days: list[dt.date] | None = None,
                      seed: str = "", lanes: int = 1) -> Proof:
    """Recompute a sample of the stored days of [start, end] (only those of `days`, when given) at their
    prediction times and compare; `seed` varies the sample (a snapshot's differs from its feature runs');
    `lanes` as `prove_feature_sets` takes it."""
    return prove_feature_sets(connection, catalog, [feature_set], start, end, max_cuts, days, seed, lanes)[0]


def prove_feature_sets(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_sets: list[FeatureSetSpec],
                       start: dt.date, end: dt.date, max_cuts: int = MAX_CUTS, days: list[dt.date] | None = None,
                       seed: str = "", lanes: int = 1) -> list[Proof]:
    """The proof of each feature set (`prove_feature_set`), in the order given.

    `lanes` > 1: the cuts of every set are recomputed on that many cursors of the connection at once
    (`run_on_cursors`), each cut's SQL single-threaded as always, so each cut finds the same values; verdicts,
    counts, differences and errors are those of the sets and cuts taken in order (the first cut to fail in that
    order raises its error). A cursor sees only what the database holds: a connection holding a temporary table
    or view, or an object registered on it (Delta feature tables read through Arrow), proves on one lane by itself
    (`private_objects`); a caller must not hand over rows it has not committed. The cuts of the sets whose SQL
    names a `history.` view run one after another on one cursor, beside the others: these views are the
    database's, shared by every cursor, and each cut binds them at its own moment. A set's `seconds` adds the
    time of its own cuts (others ran beside them)."""
    wanted = set(days) if days is not None else None
    lanes = 1 if lanes > 1 and private_objects(connection) else lanes  # what a cursor could not read
    samples = []
    for feature_set in feature_sets:
        began = time.monotonic()
        register_functions(connection, list(feature_set.functions))  # callable from its cursors while it is open
        with bound(connection, feature_set):
            bind_entity(connection, catalog, feature_set,
                        f"partition_date BETWEEN {date_literal(start)} AND {date_literal(end)}")
            every = [(day, cut) for day, cut in connection.execute(
                f"SELECT DISTINCT partition_date, {names.PREDICTION_TIME_COLUMN} FROM entity ORDER BY 1, 2"
            ).fetchall() if wanted is None or day in wanted]
            shares_history = lanes > 1 and bool(history_reads(connection, feature_set))
        samples.append((feature_set, every, sample_cuts(f"{seed}{feature_set.name}", every, max_cuts),
                        shares_history, time.monotonic() - began))
    # every cut of every set in order: (set's index, day, cut)
    ordered = [(index, day, cut) for index, (_, _, cuts, _, _) in enumerate(samples) for day, cut in cuts]
    outcomes: dict[tuple, tuple[float, tuple[int, list[tuple]] | BaseException]] = {}

    def check(cursor: duckdb.DuckDBPyConnection, pieces: list[tuple], history: list[str] | None) -> None:
        for piece in pieces:  # one after another; the first failing one ends them (a loop over them stops there)
            began = time.monotonic()
            index, day, cut = piece
            try:
                found = _check_cut(cursor, catalog, samples[index][0], day, cut, history)
            except Exception as error:  # raised below in the order of the cuts, as a loop over them raises it
                outcomes[piece] = (time.monotonic() - began, error)
                return
            outcomes[piece] = (time.monotonic() - began, found)

    if lanes > 1 and len(ordered) > 1:
        chained = [piece for piece in ordered if samples[piece[0]][3]]
        # the chain of cuts binding `history.` views first (the longest piece), then each other cut alone; the
        # other cuts bind no `history.` view (their SQL names none)
        work = ([lambda cursor: check(cursor, chained, None)] if chained else []) + [
            lambda cursor, piece=piece: check(cursor, [piece], []) for piece in ordered if piece not in chained]
        with single_threaded(connection), lane_cursors(connection, min(lanes, len(work))) as cursors:
            run_on_cursors(cursors, work)
    else:
        try:
            check(connection, ordered, None)
        finally:  # the bare names resolve to the warehouse's tables again, however the cuts ended
            for feature_set in feature_sets:
                unbind(connection, feature_set)
    for piece in ordered:  # the first cut to fail in order, as one loop over the sets and their cuts raises it
        outcome = outcomes.get(piece)
        if isinstance(outcome, tuple) and isinstance(outcome[1], BaseException):
            raise outcome[1]
    return [_verdict(connection, catalog, feature_set, every, cuts,
                     [outcomes[(index, day, cut)][1] for day, cut in cuts],
                     seconds + sum(outcomes[(index, day, cut)][0] for day, cut in cuts))
            for index, (feature_set, every, cuts, _, seconds) in enumerate(samples)]


def _verdict(connection: duckdb.DuckDBPyConnection, catalog: Catalog, feature_set: FeatureSetSpec, every: list,
             cuts: list, checked: list[tuple[int, list[tuple]]], seconds: float) -> Proof:
    """The proof of a set from what its cuts found: rows counted, differing rows counted, and the first SHOWN
    differences each recomputed again on the connection to find the sources that change it."""
    began = time.monotonic()
    rows = differing_rows = 0
    differences: list[Difference] = []
    with bound(connection, feature_set):
        for (day, cut), (cut_rows, found) in zip(cuts, checked):
            rows += cut_rows
            if not found:
                continue
            differing_rows += len({key for _, key, _, _ in found})
            if len(differences) < SHOWN:
                feature, key, stored, recomputed = found[0]
                _recompute(connection, catalog, feature_set, day, cut, (), "proof_cut")  # what `_blame` compares to
                sources = _blame(connection, catalog, feature_set, day, cut, feature, key)
                differences.append(Difference(feature, key, day, cut, stored, recomputed, sources))
        connection.execute("DROP TABLE IF EXISTS proof_cut")
    return Proof(feature_set.name, len(every), tuple(cuts), rows, seconds + time.monotonic() - began,
                 differing_rows, tuple(differences))
