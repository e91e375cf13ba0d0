"""When a model retrains: on its cadence, on a new spec revision, when the champion's realized money is under water
(its last 7 judged days `losing money` or `below the interval`), or on a drift alarm, as a new training run; the last
two at most once a week (7 labelled days after the last run's cut-off).

Pure decisions over the warehouse and the run keys already requested, so the sensor stays a thin shell and the
decision can be tested and explained on its own.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable

import duckdb

from ml_platform.features.labels import labels_known_through
from ml_platform.evaluation.realized import EVIDENCE_DAYS, recent_verdict
from ml_platform.partitions import parse_training_run_key, training_run_key, training_split
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform import grains
from ml_platform.names import population_asset, source_asset
from ml_platform.storage import registry
from ml_platform.storage.versions import partition_versions

DRIFT_RETRAIN_AFTER_DAYS = 7  # a drift alarm retrains at most once a week: new data must have arrived meanwhile


@dataclass(frozen=True)
class Retraining:
    """A training run the sensor should request, and why."""

    training_run: str
    cutoff: dt.date
    reason: str


def period_end(cadence: str, day: dt.date) -> dt.date:
    """The last day, on or before `day`, that closes a retraining period of the cadence."""
    if cadence == "weekly":  # weeks end on Sunday
        return day - dt.timedelta(days=(day.weekday() + 1) % 7)
    month_end = calendar.monthrange(day.year, day.month)[1]
    if cadence == "quarterly":
        last_month = day.month if day.month % 3 == 0 and day.day == month_end else (day.month - 1) // 3 * 3
    else:
        last_month = day.month if day.day == month_end else day.month - 1
    year = day.year
    if last_month == 0:
        year, last_month = year - 1, 12
    return dt.date(year, last_month, calendar.monthrange(year, last_month)[1])


def last_labelled_day(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec,
                      today: dt.date) -> dt.date | None:
    """The last day of the unbroken stored run of entity partitions whose labels are mature and fully stored on
    `today` (see ml_platform.features.labels: the label's horizon, the day's end and its sources' delivery); an
    entity spec's partitions follow one another by its grain."""
    rows = catalog.entity_rows(model.entity)
    asset = population_asset(model.entity) if rows.is_population else source_asset(model.entity)
    stored = sorted(dt.date.fromisoformat(key) for key in partition_versions(connection, asset))
    known = labels_known_through(connection, catalog, model, stored[0], today) if stored else None
    if known is None:
        return None
    last = stored[0]
    for day in stored[1:]:
        following = grains.shift(rows.grain, dt.datetime.combine(last, dt.time()), 1).date()
        if day > known or day > following:  # a gap: no run can be cut off after it until the gap is filled
            break
        last = day
    return last


def decide_retraining(connection: duckdb.DuckDBPyConnection, catalog: Catalog, model: ModelSpec, today: dt.date,
                      requested_runs: Iterable[str],
                      drift_alarm: Callable[[duckdb.DuckDBPyConnection, str, dt.date], str | None] | None = None,
                      ) -> Retraining | str:
    """The training run due on `today`, or the reason none is (for the sensor's skip message)."""
    spec_hash = catalog.spec_hash(model)
    labelled = last_labelled_day(connection, catalog, model, today)
    if labelled is None:
        return f"no {model.entity} day with known labels is stored yet"
    cutoffs = {}
    for key in requested_runs:
        try:
            cutoff, run_hash = parse_training_run_key(key)
        except ValueError:
            continue
        cutoffs[key] = (cutoff, run_hash)
    this_spec = [cutoff for cutoff, run_hash in cutoffs.values() if run_hash == spec_hash]
    latest = max(this_spec, default=None)
    cadence = model.cadence.retraining
    due_end = period_end("monthly" if cadence == "never" else cadence, labelled)

    candidates: list[tuple[dt.date, str]] = []
    if latest is None:
        first = "first training run" if not cutoffs else f"new spec revision {spec_hash}"
        candidates.append((due_end, f"{first}: data through {due_end}"))
    elif cadence != "never" and due_end > latest:
        candidates.append((due_end, f"{cadence} retraining: labelled data through {due_end} "
                                    f"(the last run was cut off on {latest})"))
    elif (labelled - latest).days >= DRIFT_RETRAIN_AFTER_DAYS:
        under_water = realized_alarm(connection, model, labelled, catalog.entity_rows(model.entity).grain)
        alarm = drift_alarm(connection, model.name, today) if drift_alarm is not None and not under_water else None
        if under_water:
            candidates.append((labelled, f"realized money: {under_water}"))
        elif alarm:
            candidates.append((labelled, f"drift alarm: {alarm}"))
    if not candidates:
        when = "never retrains on a schedule" if cadence == "never" else f"next {cadence} cut-off after {latest}"
        return f"up to date: the last run of spec {spec_hash} was cut off on {latest}; {when}"
    cutoff, reason = candidates[0]
    try:
        training_split(model, cutoff)
    except ValueError as error:
        return f"not enough history yet: {error}"
    key = training_run_key(model, spec_hash, cutoff)
    if key in cutoffs:
        return f"training run {key} was already requested"
    return Retraining(key, cutoff, reason)


def realized_alarm(connection: duckdb.DuckDBPyConnection, model: ModelSpec, through: dt.date,
                   grain: str = "daily") -> str | None:
    """Why the champion's realized money calls for retraining, or None: its last EVIDENCE_DAYS (7) judged days up to
    `through` are `losing money` or `below the interval` (see ml_platform.evaluation.realized)."""
    champion = registry.promotions.champion(connection, model.name)
    if champion is None:
        return None
    judged = recent_verdict(connection, model.name, champion.model_version, through, EVIDENCE_DAYS, grain)
    if judged is None or not judged.under_water:
        return None
    return f"the champion {champion.model_version} is {judged.text()}"


def has_champion(connection: duckdb.DuckDBPyConnection, model: ModelSpec) -> bool:
    """True when a model version of this model is deployed."""
    return registry.promotions.champion(connection, model.name) is not None
