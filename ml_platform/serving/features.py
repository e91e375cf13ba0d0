"""The feature rows of requested entities, through the same SQL as training and batch scoring.

A requested row's day is served from its precomputed feature partitions when the server's copy holds them,
otherwise that day's feature sets are computed on demand by `features.compute.compute_group` (the batch's own
code: the entity bound to the day's rows, every source cut at the day's prediction time, bound once for the sets
of one entity and `known_by`; independent sets on two cursors at once) into the copy, and
the rows are then read exactly as batch scoring reads them (`features.compute.feature_matrix_sql`). A day's
feature SQL may aggregate over the day's rows (departures from the same airport that day), so a day is computed
whole: restricting the entity to the requested rows would change such features.

A model whose entity is a population (an entity spec: hourly, weekly or monthly rows) is served the same way from
the copy's population partitions: a row is named by the entity's keys within its partition, so a request names
the partition too (`served_keys`: an hourly row's `partition_start` already does, else `partition_date`, the
period's first day), and a partition missing its feature rows is computed by `compute_feature_set`, the batch's
code for populations, one partition at a time.
"""

from __future__ import annotations

import datetime as dt
import threading

import duckdb

from ml_platform.features.compute import (FeatureComputationError, compute_feature_set, compute_group, day_groups,
                                          entity_table, prepare_feature_set)
from ml_platform.features.relations import history_reads
from ml_platform.names import feature_table, quote
from ml_platform.serving.errors import ServingError
from ml_platform.serving.keys import held, served_keys
from ml_platform.serving.models import LoadedModel
from ml_platform.serving.once import OnceCache
from ml_platform.serving.scored_day import ScoredDay, score_day
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import FeatureSetSpec, ModelSpec
from ml_platform.storage.lanes import LANES, run_on_cursors
from ml_platform.storage.warehouse import single_threaded, table_exists

PRECOMPUTED, ON_DEMAND = "precomputed", "on_demand"
SCORED_DAYS = 128


def _in_dependency_order(catalog: Catalog, feature_sets: list[FeatureSetSpec]) -> list[FeatureSetSpec]:
    """The feature sets and those they use, each after the sets it uses; among the sets that may come in any
    order (the same depth of use), those of the same entity and `known_by` side by side, so that a day's
    computation binds their relations once (`features.compute.day_groups`)."""
    ordered: list[FeatureSetSpec] = []
    depth: dict[str, int] = {}

    def visit(feature_set: FeatureSetSpec) -> None:
        if feature_set in ordered:
            return
        for used in feature_set.uses:
            visit(catalog.feature_sets[used])
        depth[feature_set.name] = 1 + max((depth[used] for used in feature_set.uses), default=-1)
        ordered.append(feature_set)

    for feature_set in feature_sets:
        visit(feature_set)
    bindings = list(dict.fromkeys((feature_set.entity, feature_set.known_by) for feature_set in ordered))
    return sorted(ordered, key=lambda feature_set: (depth[feature_set.name],
                                                    bindings.index((feature_set.entity, feature_set.known_by))))


BINDING = 0.75  # a group's binding of the day's entity rows and cut sources, in sets' worth of work (measured on
# the demo: about 9 ms, against 9 to 16 ms for each set's SQL, checks and write)


def _cost(lane: list[list[FeatureSetSpec]]) -> float:
    return sum(len(group) for group in lane) + BINDING * len(lane)


def _lanes(groups: list[list[FeatureSetSpec]], histories: dict[str, list[str]]) -> tuple[list, list]:
    """Independent groups of feature sets shared out between two cursors, about the same work each; groups
    naming the same `history.` view (shared by every cursor: one cursor replacing it while another reads it
    would change what that one reads) stay on one cursor, all of them when that cannot be kept apart. Then, while
    it lowers the busier cursor's work, a set naming no `history.` view leaves the busier cursor's largest group
    for a group of its own entity and `known_by` on the other cursor, which binds them once more (the demo's
    three sets of one binding against one set of another: 46 and 22 ms on the two cursors, 34 and 40 ms split)."""
    lanes: tuple[list, list] = ([], [])
    named: tuple[set, set] = (set(), set())
    for group in groups:
        views = {name for feature_set in group for name in histories[feature_set.name]}
        sharing = [lane for lane in (0, 1) if views & named[lane]]
        if len(sharing) == 2:
            return list(groups), []
        lane = sharing[0] if sharing else min((0, 1), key=lambda lane: _cost(lanes[lane]))
        lanes[lane].append(group)
        named[lane].update(views)
    while True:
        busy = 0 if _cost(lanes[0]) >= _cost(lanes[1]) else 1
        other = lanes[1 - busy]
        largest = max(lanes[busy], key=len, default=[])
        movable = [feature_set for feature_set in largest if not histories[feature_set.name]]
        if len(largest) < 2 or not movable:
            break
        moved = movable[-1]
        binding = (moved.entity, moved.known_by)
        joined = next((group for group in other if (group[0].entity, group[0].known_by) == binding), None)
        after = (_cost(lanes[busy]) - 1, _cost(other) + 1 + (0 if joined else BINDING))
        if max(after) >= _cost(lanes[busy]):
            break
        largest.remove(moved)
        if joined is None:
            other.append([moved])
        else:
            joined.append(moved)
    return lanes if lanes[0] else (lanes[1], [])


class FeatureReader:
    """Reads feature rows from the server's copy; computes missing days one at a time (the copy's feature tables
    are written by one computation at a time, as a Dagster run writes the warehouse's).

    The copy is one data version (a new version is a new copy and a new reader), so a day's features are computed
    on demand at most once per reader: the sources are cut at the day's own prediction times (the feature sets'
    `known_by`), never at a request's `prediction_time`, so a later request for the same day, whatever its
    prediction time, reads what the first one computed; concurrent requests for that day wait for the one
    computation. Each model version's answers for a day are scored once (`scored_day.score_day`) and kept.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, catalog: Catalog):
        self.connection = connection
        self.catalog = catalog
        self._computing = threading.Lock()
        # LANES cursors compute, each kept: the feature functions registered on the first stay bound to it (a
        # function registered on a closed cursor stays in the catalog but cannot be called)
        self._compute_cursors = [connection.cursor() for _ in range(LANES)]
        self._compute_cursor = self._compute_cursors[0]
        self._histories: dict[str, list[str]] = {}  # per feature set: the sources whose history. views it names
        self._stored_days = {name: {row[0] for row in connection.execute(
            f"SELECT DISTINCT CAST(partition_date AS DATE) FROM {feature_table(name)}").fetchall()}
            for name in catalog.feature_sets if table_exists(connection, "features", name)}
        self._on_demand_days: dict[str, set[dt.date]] = {}  # per feature set: the days this reader computed
        self.checked: OnceCache[None] = OnceCache()  # per feature set: prepared (SQL checked, functions registered)
        self.computations: OnceCache[None] = OnceCache()  # per (feature set, day): computed on demand once
        # per (model version, day, how served): scored once, the SCORED_DAYS latest kept (a few MB each)
        self.scored: OnceCache[ScoredDay] = OnceCache(SCORED_DAYS)
        self._entity_days: dict[str, dict] = {}
        self._indexing = threading.Lock()

    def entity_days(self, entity: str) -> dict:
        """{key identity: day} of every row of the entity in the copy (`served_keys`), built on first use."""
        days = self._entity_days.get(entity)
        if days is None:
            with self._indexing:
                days = self._entity_days.get(entity)
                if days is None:
                    keys = served_keys(self.catalog, entity)
                    with self.connection.cursor() as cursor:
                        rows = cursor.execute(f"SELECT {', '.join(quote(key) for key in keys)}, CAST(partition_date "
                                              f"AS DATE) FROM {entity_table(self.catalog, entity)}").fetchall()
                    # a DATE key as the datetime requests are parsed into (the day itself stays a date)
                    identities = held([row[:-1] for row in rows])
                    days = {identity[0] if len(keys) == 1 else identity: row[-1]
                            for identity, row in zip(identities, rows)}
                    self._entity_days[entity] = days
        return days

    def _prepared(self, feature_set: FeatureSetSpec) -> None:
        """The SQL checks, the input tables and the functions registered on the first compute cursor depend on
        the SQL, the catalog and the copy's tables only: once per feature set of this reader (a registered
        function is in the database's catalog: every cursor calls it while the one it was registered on stays
        open); and the sources whose `history.` views the SQL names."""
        def prepare() -> None:
            prepare_feature_set(self._compute_cursor, self.catalog, feature_set)
            self._histories[feature_set.name] = history_reads(self._compute_cursor, feature_set)

        self.checked.get(feature_set.name, prepare)

    def warm(self, spec: ModelSpec) -> None:
        """Build, before any request, what the first request would otherwise wait for: the entity's key index
        and the on-demand preparation of the model's feature sets (about 0.3 s together on the demo). A feature
        set that cannot be prepared is left as it is: the request that needs it prepares it again and answers
        with the reason."""
        self.entity_days(spec.entity)
        with self._computing, single_threaded(self._compute_cursor):
            for feature_set in _in_dependency_order(self.catalog, self.catalog.feature_sets_of(spec)):
                try:
                    self._prepared(feature_set)
                except FeatureComputationError:
                    continue

    def _run_lane(self, cursor: duckdb.DuckDBPyConnection, groups: list[list[FeatureSetSpec]], day: dt.date) -> None:
        for group in groups:
            if self.catalog.entity_rows(group[0].entity).is_population:  # the batch's code for a population
                for feature_set in group:
                    compute_feature_set(cursor, self.catalog, feature_set, day, day, sql_checked=True, prepared=True)
            else:
                compute_group(cursor, self.catalog, group, day, self._histories)

    def _compute_day(self, feature_sets: list[FeatureSetSpec], day: dt.date) -> None:
        """Compute the day's feature sets not computed yet under one lock and one single-threaded stretch (the
        thread setting is database-wide and costs milliseconds to change: once per day, not per feature set).
        Each run of sets of one entity and `known_by` is one `compute_group` (the day's entity rows and cut
        sources bound once, not once per set); the groups of one depth of use (none uses another) run on two
        cursors at once (`_lanes`), each set single-threaded, so each set's rows are the same bits. Each
        computed (set, day) is then recorded in `computations` under the lock, so a caller waiting for the lock
        finds them computed."""
        with self._computing, single_threaded(self._compute_cursor):
            pending = [fs for fs in feature_sets if (fs.name, day) not in self.computations]
            if not pending:
                return
            try:
                for feature_set in pending:
                    self._prepared(feature_set)
                for depth in sorted({self._depth(feature_set) for feature_set in pending}):
                    level = [feature_set for feature_set in pending if self._depth(feature_set) == depth]
                    # a population's set binds every `history.` view it may read (compute_feature_set): alone
                    population = any(self.catalog.entity_rows(fs.entity).is_population for fs in level)
                    first, second = _lanes(day_groups(level), self._histories) if LANES > 1 and not population \
                        else (day_groups(level), [])
                    if not second:
                        self._run_lane(self._compute_cursor, first, day)
                        continue
                    # the first lane's error first, as when the lanes ran one after the other
                    run_on_cursors(self._compute_cursors, [lambda cursor, groups=groups: self._run_lane(
                        cursor, groups, day) for groups in (first, second)])
            except FeatureComputationError as error:
                raise ServingError(f"features of {day} cannot be computed on demand: {error}") from error
            for feature_set in pending:
                self._stored_days.setdefault(feature_set.name, set()).add(day)
                self._on_demand_days.setdefault(feature_set.name, set()).add(day)
                self.computations.record((feature_set.name, day), None)

    def _depth(self, feature_set: FeatureSetSpec) -> int:
        """0 for a set that uses no other, else one more than the deepest set it uses."""
        return 1 + max((self._depth(self.catalog.feature_sets[used]) for used in feature_set.uses), default=-1)

    def computed_days(self, spec: ModelSpec, days: list[dt.date], force: bool) -> dict[dt.date, str]:
        """{day: how its features are served}: a day whose partitions the copy lacks (every day, when force) is
        computed on demand, once per feature set and day; the others are read as precomputed."""
        sets = self.catalog.feature_sets_of(spec)
        result = {}
        for day in days:
            missing = [fs for fs in sets if day not in self._on_demand_days.get(fs.name, ())
                       and (force or day not in self._stored_days.get(fs.name, ()))]
            ordered = [feature_set for feature_set in _in_dependency_order(self.catalog, missing)
                       if (feature_set.name, day) not in self.computations]
            if ordered:
                self._compute_day(ordered, day)
            result[day] = ON_DEMAND if any(day in self._on_demand_days.get(fs.name, ()) for fs in sets) \
                else PRECOMPUTED
        return result

    def scored_day(self, model: LoadedModel, day: dt.date, how: str) -> ScoredDay:
        """The model version's answers for every row of `day`, scored once per (version, day, how served)."""
        def build() -> ScoredDay:
            with self.connection.cursor() as cursor:
                return score_day(cursor, self.catalog, model, day, how)

        return self.scored.get((model.trained.model_version, day, how), build)
