"""The spec language, version 1: typed, frozen models for sources, feature sets, entities and models.

Every YAML document under `model_specs/` is one of these four kinds, chosen by its `kind` field. The
`description` of each field doubles as the reference documentation and ends up in the JSON schema.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer, model_validator

from ml_platform.names import AVAILABLE_AT_COLUMN, PREDICTION_TIME_COLUMN
from ml_platform.specs.search import search_model

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
DAYS_AHEAD = 7  # the furthest ahead a model can predict: daily partitions exist this many days beyond today
Identifier = Annotated[
    str,
    Field(pattern=IDENTIFIER_PATTERN, description="lower-case snake_case name: a letter, then letters, digits or _"),
]
SqlExpression = Annotated[str, Field(min_length=1, description="a DuckDB SQL expression")]

COLUMN_TYPES = ("BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP")
ColumnType = Literal["BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP"]

# ISO 4217 codes of the currencies a money spec may use.
CURRENCIES = (
    "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "JPY",
    "KRW", "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "SEK", "SGD", "THB", "TRY", "TWD", "USD", "ZAR",
)
Currency = Literal[
    "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "JPY",
    "KRW", "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "SEK", "SGD", "THB", "TRY", "TWD", "USD", "ZAR",
]


def known_timezone(value: str) -> str:
    """The IANA time zone name, or a ValueError saying what is allowed."""
    import zoneinfo

    if value not in zoneinfo.available_timezones():
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'America/New_York' or 'UTC'")
    return value


class Frozen(BaseModel):
    """Base of every spec model: unknown fields are errors and parsed specs never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Header(Frozen):
    """Fields every spec document carries."""

    spec_version: Literal[1] = Field(description="version of the spec language; 1 is the only one")
    name: Identifier
    description: str = Field(min_length=1, description="what this is, for people: shown in the Dagster UI")
    owner: str = Field(
        min_length=1,
        pattern=r"^(team:[A-Za-z0-9_-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$",
        description="who answers for it: an e-mail address or team:<name>",
    )


# ----------------------------------------------------------------------------------------------------------- sources


class PackageDataLocation(Frozen):
    """A data file that an installed Python package ships (read from disk; the package is never imported)."""

    kind: Literal["package_data"]
    package: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="importable package name")]
    path: str = Field(min_length=1, description="path of the file inside the package folder")
    format: Literal["csv", "csv_zip"] = Field(description="csv, or a zip archive holding one csv")
    null_string: str = Field(default="NA", description="the text that stands for a missing value")


class FileLocation(Frozen):
    """A data file inside the project folder."""

    kind: Literal["file"]
    path: str = Field(min_length=1, description="path relative to the project folder; must stay inside it")
    format: Literal["csv", "parquet"]
    null_string: str = Field(default="", description="csv only: the text that stands for a missing value")


Location = Annotated[Union[PackageDataLocation, FileLocation], Field(discriminator="kind")]


class ColumnSpec(Frozen):
    """One column of a source as the warehouse stores it."""

    type: ColumnType = Field(description="DuckDB type the column is cast to on load")
    known: Literal["before_event", "after_event"] = Field(
        default="before_event",
        description="after_event columns (outcomes) may feed labels and money but never a feature of the same row",
    )
    available_at: SqlExpression | None = Field(
        default=None,
        description=(
            "after_event columns only: when this column's value becomes known, a local TIMESTAMP expression over "
            "the source's columns (e.g. the actual departure for a departure delay). Before that moment the "
            "column reads NULL in every relation feature SQL sees. Default: the source's default availability "
            "(the end of the row's local partition day for daily sources; the row's availability for reference "
            "tables)"),
    )
    description: str = ""

    @model_validator(mode="after")
    def _availability_of_outcomes_only(self):
        if self.available_at is not None and self.known != "after_event":
            raise ValueError("available_at is only for columns with known: after_event (the other columns are "
                             "known with their row: give the source's available_at instead)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        """Accept `column: TYPE` as shorthand for `column: {type: TYPE}`."""
        return {"type": value} if isinstance(value, str) else value


class DerivedColumn(Frozen):
    """A column computed on load from the source's own columns."""

    expression: SqlExpression
    type: ColumnType
    description: str = ""


class DailyPartitioning(Frozen):
    """Rows are split into daily partitions by their local event date."""

    kind: Literal["daily"]
    date: SqlExpression = Field(description="SQL expression giving each row's local event date")
    start: dt.date = Field(description="first day with data")
    end: dt.date | None = Field(default=None, description="last day with data; open-ended when absent")
    timezone: str = Field(default="UTC", description="IANA time zone of the local dates, e.g. America/New_York")

    @model_validator(mode="after")
    def _ordered(self):
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)


class NoPartitioning(Frozen):
    """A small reference table loaded whole (dimension table)."""

    kind: Literal["none"]


Partitioning = Annotated[Union[DailyPartitioning, NoPartitioning], Field(discriminator="kind")]


class ValueRange(Frozen):
    """Plausible values of a numeric column; values outside are impossible and reject the load."""

    min: float | None = None
    max: float | None = None
    outside: Literal["reject", "set_missing"] = Field(
        default="reject",
        description="reject the load, or keep the row with the impossible value set missing (and counted)",
    )

    @model_validator(mode="after")
    def _ordered(self):
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class DistributionChecks(Frozen):
    """Daily sources: each numeric column's typical size on a day, judged against the trailing days (a unit change).

    The typical size of a column on a day is the mean absolute value of its non-zero values. A day fails when its
    logarithm lies more than `threshold` robust standard deviations (1.4826 x the median absolute deviation of the
    trailing days' values, at least 0.05) from the trailing days' median, or when it differs from that median by more
    than a factor of `max_factor`.
    """

    window_days: int = Field(default=28, ge=2, le=366, description="how many days before a partition it is judged by")
    min_history_days: int = Field(
        default=7, ge=1, le=366,
        description="fewer trailing days with enough values and the column passes unjudged, saying so")
    min_values: int = Field(default=10, ge=1, description="least non-zero values a day needs to be judged or compared")
    threshold: float = Field(default=8.0, gt=0, description="largest robust z allowed for the day's typical size")
    max_factor: float = Field(default=10.0, gt=1, description="largest ratio allowed between the day's typical size "
                                                                "and the trailing days' one (either way)")
    thresholds: dict[Identifier, float] = Field(
        default_factory=dict, description="per column: a robust z threshold replacing `threshold` (a volatile column)")
    exclude: list[Identifier] = Field(
        default_factory=list,
        description="numeric columns not judged (e.g. angles, codes); columns the partition date is computed from and "
                    "the keys are never judged")

    @field_validator("thresholds")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        negative = sorted(name for name, threshold in value.items() if not threshold > 0)
        if negative:
            raise ValueError(f"thresholds must be above 0: {', '.join(negative)}")
        return value


class NullSurgeChecks(Frozen):
    """Daily sources: no column may be missing far more often on a day than on any of the trailing days."""

    margin: float = Field(default=0.3, ge=0, le=1,
                          description="allowed rise of a column's missing share above its largest trailing share")
    min_missing: int = Field(default=10, ge=1, description="fewer missing values on a day never fail")
    exclude: list[Identifier] = Field(default_factory=list, description="columns not judged")


class SourceChecks(Frozen):
    """Data checks every load must pass before its rows replace the stored ones."""

    min_rows_per_day: int = Field(default=1, ge=0, description="daily sources: fewer rows on a day reject the load")
    unique_keys: bool = Field(default=True, description="no two rows share the same keys")
    not_null: list[Identifier] = Field(default_factory=list, description="columns that must never be missing")
    ranges: dict[Identifier, ValueRange] = Field(default_factory=dict, description="plausible values per column")
    distribution: DistributionChecks = Field(
        default_factory=DistributionChecks,
        description="daily sources: each numeric column's typical size against the trailing days (a changed unit)")
    null_surge: NullSurgeChecks = Field(
        default_factory=NullSurgeChecks,
        description="daily sources: each column's missing share against the trailing days")


PLATFORM_COLUMNS = (AVAILABLE_AT_COLUMN, PREDICTION_TIME_COLUMN)
AVAILABILITY_FIELDS = {"available_at": True, "columns": {"__all__": {"available_at"}}}


class SourceSpec(Header):
    """A raw business table loaded into the warehouse."""

    kind: Literal["source"]
    trust: Literal["internal", "external_vendor", "model_output"] = Field(
        description="how far the data can be trusted: internal, an external vendor's, or another model's output"
    )
    location: Location
    columns: dict[Identifier, ColumnSpec] = Field(min_length=1, description="the columns kept, with their types")
    derived_columns: dict[Identifier, DerivedColumn] = Field(default_factory=dict)
    keys: list[Identifier] = Field(min_length=1, description="columns that identify a row uniquely")
    partitioning: Partitioning
    available_at: SqlExpression | None = Field(
        default=None,
        description=(
            "when each row becomes known to the platform: a local wall-clock TIMESTAMP expression (in the "
            "partitioning's time zone; reference tables: the time zone of the entity reading them) over the "
            "source's columns, derived columns and partition_date, e.g. `observed_at + INTERVAL 1 HOUR`. Feature "
            "SQL never sees a row whose availability is after the prediction time of the entity row it computes. "
            "Default: daily sources, the end of the row's local partition day (a day's rows are delivered when "
            "the day is over); reference tables (partitioning none), always known (static reference facts)"),
    )
    checks: SourceChecks = Field(default_factory=SourceChecks)

    @model_validator(mode="after")
    def _platform_columns_free(self):
        taken = sorted({*self.columns, *self.derived_columns} & set(PLATFORM_COLUMNS))
        if taken:
            raise ValueError(f"column name(s) {', '.join(taken)} are the platform's (every relation feature SQL "
                             f"reads carries them); rename the column")
        return self

    @property
    def is_daily(self) -> bool:
        """True when the source is split into daily partitions."""
        return isinstance(self.partitioning, DailyPartitioning)

    def all_columns(self) -> dict[str, str]:
        """Every column the warehouse table holds, with its DuckDB type (partition_date included when daily)."""
        columns = {name: column.type for name, column in self.columns.items()}
        columns.update({name: column.type for name, column in self.derived_columns.items()})
        if self.is_daily:
            columns["partition_date"] = "DATE"
        return columns

    def without_availability(self) -> dict:
        """The spec as plain data without its availability times, which change no loaded row and no model's
        spec hash (the point-in-time proof verifies them, and feature versions include them)."""
        return self.model_dump(mode="json", exclude=AVAILABILITY_FIELDS)

    def after_event_columns(self) -> list[str]:
        """Columns that are only known after the event."""
        return [name for name, column in self.columns.items() if column.known == "after_event"]


# ------------------------------------------------------------------------------------------------------ feature sets

KNOWN_BY_FORMS = ("{hours_before: H}, {days_before: D}, {days_before: D, time: \"HH:MM\"} or {months_before: M}")


class FeatureSpec(Frozen):
    """One feature: a column the feature set's SQL returns."""

    type: Literal["number", "category"] = Field(description="number, or category (a label with no order)")
    description: str = Field(min_length=1)


class KnownBy(Frozen):
    """When a value is known, relative to the entity row's own time: exactly one form.

    `{hours_before: H}`: H hours before the row's time. `{days_before: D}`: D days before, at the row's clock time.
    `{days_before: D, time: "HH:MM"}`: D days before the row's local event date (the date of its time), at that
    clock time. `{months_before: M}`: M calendar months before, same day of month and time (clamped to the month's
    end, as DuckDB's `INTERVAL M MONTH`).
    """

    hours_before: int | None = Field(default=None, ge=0, le=24 * 366,
                                     description="hours before the row's time (alone)")
    days_before: int | None = Field(default=None, ge=0, le=366,
                                    description="days before the row's time, at its clock time; with `time`: days "
                                                "before the row's local event date, at that time")
    months_before: int | None = Field(default=None, ge=0, le=120,
                                      description="calendar months before the row's time (alone)")
    time: str | None = Field(default=None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                             description="local time of day, HH:MM, with days_before only")

    @model_validator(mode="after")
    def _exactly_one_form(self):
        given = [name for name in ("hours_before", "days_before", "months_before", "time")
                 if getattr(self, name) is not None]
        if given not in (["hours_before"], ["days_before"], ["months_before"], ["days_before", "time"]):
            raise ValueError(f"give exactly one of {KNOWN_BY_FORMS} (given: {', '.join(given) or 'none'})")
        return self

    @model_serializer(mode="wrap")
    def _without_unused_forms(self, handler):
        """Leave out the fields of the other forms, so that a spec written before they existed keeps its hash."""
        return {name: value for name, value in handler(self).items() if value is not None}

    @property
    def at_clock_time(self) -> bool:
        """True for the form `days_before` + `time` (relative to the event date, not to the row's time)."""
        return self.time is not None

    def describe(self) -> str:
        """The form in words."""
        if self.time is not None:
            return f"{self.days_before} day(s) before the row's date, at {self.time}"
        if self.hours_before is not None:
            return f"{self.hours_before} hour(s) before the row's time"
        if self.months_before is not None:
            return f"{self.months_before} month(s) before the row's time"
        return f"{self.days_before} day(s) before the row's time"

    def least_minutes_before_day_start(self) -> int:
        """The fewest minutes this moment lies before the start of the row's day, for a row at its day's start
        (larger is earlier; a month counts as its shortest, 28 days)."""
        if self.time is not None:
            hours, minutes = (int(part) for part in self.time.split(":"))
            return (self.days_before or 0) * 24 * 60 - (hours * 60 + minutes)
        if self.hours_before is not None:
            return self.hours_before * 60
        if self.months_before is not None:
            return self.months_before * 28 * 24 * 60
        return (self.days_before or 0) * 24 * 60

    def minutes_before_event_day(self) -> int:
        """Minutes between this moment and the start of the event day (larger is earlier); the clock form only."""
        if self.time is None:
            raise ValueError(f"known_by {self.describe()} is not at a clock time")
        return self.least_minutes_before_day_start()


class FeatureSetSpec(Header):
    """Named, reusable features computed by one DuckDB SQL query for the rows of an entity source."""

    kind: Literal["feature_set"]
    entity: Identifier = Field(description="the daily source whose rows these features describe")
    reads: list[Identifier] = Field(default_factory=list, description="other sources the SQL reads")
    uses: list[Identifier] = Field(
        default_factory=list, description="other feature sets (of the same entity) whose tables the SQL reads by name"
    )
    functions: list[Identifier] = Field(
        default_factory=list, description="registered Python functions the SQL calls (see ml-platform functions)"
    )
    lookback_days: int = Field(
        default=0, ge=0, le=3660,
        description="how many days before a partition the SQL reads from daily sources and used feature sets",
    )
    known_by: KnownBy = Field(
        description="the latest moment any value of this set is known: each entity row's prediction time; the "
                    "blocking point_in_time check recomputes stored values with every source cut there")
    sql: str = Field(
        min_length=1,
        description=(
            "a SELECT returning the entity's keys and every declared feature, one row per row of the view "
            "`entity` (the entity's rows of the partitions being computed, each with its `prediction_time`: the "
            "row's time minus known_by); sources are read by name or as `history.<source>`, every one showing only "
            "the rows and outcome columns known at the prediction time, each row with its `available_at`"
        ),
    )
    features: dict[Identifier, FeatureSpec] = Field(min_length=1)


# ---------------------------------------------------------------------------------------------------------- entities

GRAINS = ("hourly", "daily", "weekly", "monthly")
Grain = Literal["hourly", "daily", "weekly", "monthly"]


class Lookback(Frozen):
    """How far before a partition's start a population query reads its daily sources: exactly one of the fields."""

    hours: int | None = Field(default=None, ge=1, le=24 * 3660, description="hours before the partition's start")
    days: int | None = Field(default=None, ge=1, le=3660, description="days before the partition's start")
    months: int | None = Field(default=None, ge=1, le=120, description="calendar months before the partition's start")

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [name for name in ("hours", "days", "months") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of hours, days or months (given: {', '.join(given) or 'none'})")
        return self


class EntitySpec(Header):
    """The rows a model predicts for, at its grain: one population query per partition over declared sources.

    A partition covers [partition_start, partition_end) in local time. The query reads the one-row view `bounds`
    (columns `partition_start`, `partition_end`, local TIMESTAMPs) and the sources in `reads`, whose daily ones
    it sees only from `lookback` before the partition's start to the day before it (the population is known when
    its period begins, so its rows can be scored ahead); it returns one row per entity row: the keys, the row's
    time (inside the partition) and any other entity columns.
    """

    kind: Literal["entity"]
    keys: list[Identifier] = Field(min_length=1, description="columns that identify a row within a partition")
    grain: Grain = Field(description="one partition per hour, day, ISO week (from Monday) or calendar month")
    time: Identifier = Field(description="the column holding the row's time (DATE or TIMESTAMP, local), inside "
                                         "its partition; feature timing and labels are measured from it")
    reads: list[Identifier] = Field(min_length=1, description="the sources the population query reads")
    lookback: Lookback | None = Field(
        default=None, description="how far before a partition's start the query reads daily sources (it sees "
                                  "their days from then to the day before the start: a population is chosen "
                                  "before its period begins); required when it reads a daily source")
    population: str = Field(min_length=1, description="one SELECT returning the entity rows of the partition")
    start: dt.date = Field(description="the first partition's start: a Monday for weekly, a 1st for monthly")
    end: dt.date | None = Field(default=None, description="the last day covered: the last partition is the one "
                                                          "holding it; open-ended when absent")
    timezone: str = Field(default="UTC", description="IANA time zone of partition bounds; equal to the daily "
                                                     "sources' one")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)

    @field_validator("keys", "reads")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"listed twice: {', '.join(duplicates)}")
        return value

    @field_validator("time")
    @classmethod
    def _not_a_key(cls, value: str, info: ValidationInfo) -> str:
        if value in (info.data.get("keys") or []):
            raise ValueError(f"'{value}' is also a key: the row's time is a column of its own")
        return value

    @field_validator("start")
    @classmethod
    def _aligned(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        grain = info.data.get("grain")
        if grain == "weekly" and value.isoweekday() != 1:
            raise ValueError(f"{value} is a {value.strftime('%A')}: weekly partitions start on a Monday (ISO weeks)")
        if grain == "monthly" and value.day != 1:
            raise ValueError(f"{value} is not the 1st of a month: monthly partitions start on the 1st")
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start")
        if value is not None and start is not None and value < start:
            raise ValueError(f"{value} is before start {start}")
        return value


# ------------------------------------------------------------------------------------------------------------ models


class Window(Frozen):
    """An inclusive range of local event dates."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self):
        if self.end < self.start:
            raise ValueError(f"empty window: end {self.end} is before start {self.start}")
        return self

    def overlaps(self, other: "Window") -> bool:
        """True when the two windows share a day."""
        return self.start <= other.end and other.start <= self.end


class TimeSplit(Frozen):
    """Train, validation and test windows, in this order, not overlapping."""

    kind: Literal["time"] = "time"
    train: Window
    validation: Window = Field(description="used for early stopping and to choose the decision threshold")
    test: Window = Field(description="held out: every reported figure is measured here")

    @model_validator(mode="after")
    def _ordered(self):
        windows = [("train", self.train), ("validation", self.validation), ("test", self.test)]
        for (first_name, first), (second_name, second) in zip(windows, windows[1:]):
            if first.overlaps(second) or second.start < first.start:
                raise ValueError(
                    f"{second_name} ({second.start} to {second.end}) must start after {first_name} ends ({first.end})"
                )
        return self


class Horizon(Frozen):
    """How far after a row's local day its label looks: the days (day, day + days] (the entity's grain is daily)."""

    days: int = Field(ge=1, le=3660, description="days after the row's own day that the label reads")

    @model_validator(mode="before")
    @classmethod
    def _daily_grain(cls, value):
        if isinstance(value, dict) and set(value) & {"hours", "weeks", "months", "years"}:
            unit = sorted(set(value) & {"hours", "weeks", "months", "years"})[0]
            raise ValueError(f"give the horizon in days (given {unit}): entities are daily, so a label window "
                             f"is a number of whole days after the row's day")
        return value


class LabelAggregate(Frozen):
    """A value the label reads from a daily source's later rows: an aggregate over the source's rows that match the
    entity row's keys and whose local day falls in (row's day, row's day + horizon]."""

    source: Identifier = Field(description="the daily source aggregated (declared as a source spec)")
    match: dict[Identifier, Identifier] = Field(
        min_length=1, description="entity column -> source column: the source rows matching the entity row")
    expression: SqlExpression = Field(description="an aggregate over the source's columns, e.g. sum(amount), "
                                                  "count(*)")
    default: float | None = Field(default=None, allow_inf_nan=False, description="the value when the aggregate is missing (no matching "
                                                            "row in the window), e.g. 0 for a sum")


TASKS = ("binary_classification", "regression", "multiclass")
OBJECTIVES = ("l2", "l1", "huber", "poisson", "tweedie", "quantile")


class RegressionObjective(Frozen):
    """The loss a regression minimises, with its parameter where it has one."""

    kind: Literal["l2", "l1", "huber", "poisson", "tweedie", "quantile"] = Field(
        description="l2 (squared error, predicts the mean), l1 (absolute error, the median), huber, poisson "
                    "(counts), tweedie (non-negative with many zeros), quantile (the alpha quantile)")
    alpha: float | None = Field(default=None, gt=0, lt=1, description="quantile only: which quantile, e.g. 0.9")
    delta: float | None = Field(default=None, gt=0, description="huber only: where the loss turns linear")
    variance_power: float | None = Field(default=None, ge=1, le=2,
                                         description="tweedie only: between 1 (poisson) and 2 (gamma)")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        """Accept `objective: l1` as shorthand for `objective: {kind: l1}`."""
        return {"kind": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _parameters_of_the_objective(self):
        owners = {"alpha": "quantile", "delta": "huber", "variance_power": "tweedie"}
        for parameter, owner in owners.items():
            if getattr(self, parameter) is not None and self.kind != owner:
                raise ValueError(f"{parameter} belongs to the {owner} objective, not {self.kind}; remove it")
        if self.kind == "quantile" and self.alpha is None:
            raise ValueError("the quantile objective needs alpha, the quantile to predict (between 0 and 1, "
                             "e.g. alpha: 0.9)")
        return self

    def parameter(self) -> float | None:
        """The objective's parameter (alpha, delta or variance_power), when it has one."""
        return self.alpha if self.alpha is not None else self.delta if self.delta is not None else \
            self.variance_power


class LabelSpec(Frozen):
    """What the model predicts."""

    task: Literal["binary_classification", "regression", "multiclass"] = Field(
        description="the kind of prediction: binary_classification (a probability), regression (a number) or "
                    "multiclass (a probability per class)")
    expression: SqlExpression = Field(
        description="SQL over the entity's columns (and the aggregates' names): binary_classification, true for the "
                    "positive class; regression, a number; multiclass, one of `classes`")
    objective: RegressionObjective | None = Field(
        default=None, description="regression only: the loss minimised (l2 when absent)")
    classes: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, min_length=3,
        description="multiclass only (required): every value the expression gives, in order (as text); at least 3")
    horizon: Horizon | None = Field(
        default=None, description="how far after the row's day the label looks; absent: the label reads only the "
                                  "row's own outcome columns, known when the row's day is over")
    aggregates: dict[Identifier, LabelAggregate] = Field(
        default_factory=dict, description="named values the label expression reads from later rows of daily "
                                          "sources, over the horizon (needs `horizon`)")

    @model_validator(mode="after")
    def _fields_of_the_task(self):
        if self.objective is not None and self.task != "regression":
            raise ValueError(f"objective applies to task regression only, not {self.task}; remove it")
        if self.classes is not None and self.task != "multiclass":
            raise ValueError(f"classes applies to task multiclass only, not {self.task}; remove it")
        if self.task == "multiclass":
            if self.classes is None:
                raise ValueError("task multiclass needs classes: the ordered list of the values the expression gives "
                                 "(at least 3; for two use binary_classification)")
            duplicates = sorted({value for value in self.classes if self.classes.count(value) > 1})
            if duplicates:
                raise ValueError(f"classes listed twice: {', '.join(duplicates)}")
        return self

    @model_serializer(mode="wrap")
    def _without_unused_options(self, handler):
        """Leave out the options a spec does not use, so that a spec written before they existed keeps its hash."""
        dumped = handler(self)
        if isinstance(dumped, dict):
            for name in ("objective", "classes", "horizon"):
                if getattr(self, name) is None:
                    dumped.pop(name, None)
            if not self.aggregates:
                dumped.pop("aggregates", None)
        return dumped

    def objective_kind(self) -> str:
        """The objective's name: binary, multiclass, or the regression's loss (l2 when not given)."""
        if self.task == "binary_classification":
            return "binary"
        if self.task == "multiclass":
            return "multiclass"
        return self.objective.kind if self.objective is not None else "l2"

    def label_sources(self) -> list[str]:
        """The sources the label aggregates over, besides the entity's own row, sorted."""
        return sorted({aggregate.source for aggregate in self.aggregates.values()})


class LightGBMParams(Frozen):
    """LightGBM hyper-parameters."""

    n_estimators: int = Field(default=300, ge=1, le=20000, description="maximum number of boosting rounds")
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=31, ge=2, le=131072)
    max_depth: int = Field(default=-1, ge=-1, description="-1 for no limit")
    min_child_samples: int = Field(default=20, ge=1)
    feature_fraction: float = Field(default=1.0, gt=0, le=1)
    bagging_fraction: float = Field(default=1.0, gt=0, le=1)
    bagging_freq: int = Field(default=0, ge=0)
    reg_lambda: float = Field(default=0.0, ge=0)
    early_stopping_rounds: int | None = Field(
        default=50, ge=1, description="stop when validation log loss has not improved for this many rounds"
    )


LightGBMSearch = search_model(LightGBMParams, "lightgbm")


class LightGBMAlgorithm(Frozen):
    """Gradient-boosted trees with LightGBM."""

    kind: Literal["lightgbm"]
    seed: int = Field(default=0, ge=0, description="random seed: the same seed and data give the same model")
    params: LightGBMParams = Field(default_factory=LightGBMParams)
    search: LightGBMSearch | None = Field(
        default=None, exclude_if=lambda value: value is None,  # absent from the spec's hash when not declared
        description="an optional hyper-parameter search over params, run inside each training run")


class LogisticRegressionParams(Frozen):
    """scikit-learn LogisticRegression hyper-parameters (features are one-hot encoded and standardised)."""

    C: float = Field(default=1.0, gt=0, description="inverse regularisation strength")
    max_iter: int = Field(default=1000, ge=1)
    class_weight: Literal["balanced"] | None = None


LogisticRegressionSearch = search_model(LogisticRegressionParams, "logistic_regression")


class LogisticRegressionAlgorithm(Frozen):
    """Logistic regression with scikit-learn."""

    kind: Literal["logistic_regression"]
    seed: int = Field(default=0, ge=0)
    params: LogisticRegressionParams = Field(default_factory=LogisticRegressionParams)
    search: LogisticRegressionSearch | None = Field(
        default=None, exclude_if=lambda value: value is None,  # absent from the spec's hash when not declared
        description="an optional hyper-parameter search over params, run inside each training run")


class RandomForestParams(Frozen):
    """scikit-learn RandomForestClassifier hyper-parameters."""

    n_estimators: int = Field(default=200, ge=1, le=5000)
    max_depth: int | None = Field(default=None, ge=1)
    min_samples_leaf: int = Field(default=20, ge=1)
    max_features: float = Field(default=0.5, gt=0, le=1, description="fraction of features tried at each split")


RandomForestSearch = search_model(RandomForestParams, "random_forest")


class RandomForestAlgorithm(Frozen):
    """Random forest with scikit-learn."""

    kind: Literal["random_forest"]
    seed: int = Field(default=0, ge=0)
    params: RandomForestParams = Field(default_factory=RandomForestParams)
    search: RandomForestSearch | None = Field(
        default=None, exclude_if=lambda value: value is None,  # absent from the spec's hash when not declared
        description="an optional hyper-parameter search over params, run inside each training run")


class HistGradientBoostingParams(Frozen):
    """scikit-learn HistGradientBoostingClassifier hyper-parameters."""

    max_iter: int = Field(default=300, ge=1, le=20000)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    max_leaf_nodes: int = Field(default=31, ge=2)
    min_samples_leaf: int = Field(default=20, ge=1)
    l2_regularization: float = Field(default=0.0, ge=0)


HistGradientBoostingSearch = search_model(HistGradientBoostingParams, "hist_gradient_boosting")


class HistGradientBoostingAlgorithm(Frozen):
    """Histogram gradient boosting with scikit-learn."""

    kind: Literal["hist_gradient_boosting"]
    seed: int = Field(default=0, ge=0)
    params: HistGradientBoostingParams = Field(default_factory=HistGradientBoostingParams)
    search: HistGradientBoostingSearch | None = Field(
        default=None, exclude_if=lambda value: value is None,  # absent from the spec's hash when not declared
        description="an optional hyper-parameter search over params, run inside each training run")


Algorithm = Annotated[
    Union[LightGBMAlgorithm, LogisticRegressionAlgorithm, RandomForestAlgorithm, HistGradientBoostingAlgorithm],
    Field(discriminator="kind"),
]


class OutcomeValues(Frozen):
    """Money made (positive) or lost (negative) by one row in each outcome, relative to doing nothing."""

    true_positive: SqlExpression = Field(description="flagged and really positive")
    false_positive: SqlExpression = Field(description="flagged but negative")
    false_negative: SqlExpression = Field(description="not flagged but positive")
    true_negative: SqlExpression = Field(description="not flagged and negative")


class ThresholdDecision(Frozen):
    """Binary: act on a row when its probability is at least a threshold, chosen on validation to make the most money."""

    kind: Literal["threshold"]


class BudgetDecision(Frozen):
    """Act on the rows of highest prediction in each partition (day), within a budget: at most `count` rows or a
    `share` of the day's rows; how many of them to act on is chosen on validation to make the most money."""

    kind: Literal["top"]
    count: int | None = Field(default=None, ge=1, description="most rows acted on per day")
    share: float | None = Field(default=None, gt=0, le=1, description="largest share of a day's rows acted on")

    @model_validator(mode="after")
    def _one_budget(self):
        if (self.count is None) == (self.share is None):
            raise ValueError("give the budget as count (rows per day) or share (of a day's rows), one of the two")
        return self


class OffsetRange(Frozen):
    """The offsets tried on validation: min, min + step, ..., max."""

    min: float
    max: float
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        if (self.max - self.min) / self.step > 10000:
            raise ValueError(f"{(self.max - self.min) / self.step:,.0f} offsets to try; at most 10,000 (raise step)")
        return self

    def values(self) -> list[float]:
        """Every offset tried, in order."""
        count = int(round((self.max - self.min) / self.step + 1e-9)) + 1
        return [round(self.min + index * self.step, 10) for index in range(count)]


class QuantityDecision(Frozen):
    """Regression: decide a quantity per row, `prediction x scale + offset`; the offset is chosen on validation (from
    `offset`'s range) to make the most money."""

    kind: Literal["quantity"]
    scale: float = Field(default=1.0, gt=0, description="factor applied to the prediction")
    offset: OffsetRange = Field(description="the offsets tried on validation")


class ClassDecision(Frozen):
    """Multiclass: decide one class per row: the most likely one, or the one of highest expected money under the
    predicted probabilities (the value expression evaluated for every decided and actual class)."""

    kind: Literal["class"]
    rule: Literal["most_likely", "most_money"] = "most_likely"


Decision = Annotated[Union[ThresholdDecision, BudgetDecision, QuantityDecision, ClassDecision],
                     Field(discriminator="kind")]


class MoneySpec(Frozen):
    """How the model is judged in one currency: the money value of each binary outcome (`outcomes`), or a decision
    and a per-row `value` expression for any task."""

    currency: Currency
    outcomes: OutcomeValues | None = Field(
        default=None,
        description="binary_classification shorthand: the money of each outcome; means a threshold decision")
    decision: Decision | None = Field(
        default=None, description="what is decided from each prediction (with `value`, instead of `outcomes`)")
    value: SqlExpression | None = Field(
        default=None,
        description="SQL giving one row's money from its entity columns, `label`, `prediction` (binary: the "
                    "probability; regression: the predicted number; multiclass: the decided class's probability) "
                    "and `decision` (threshold or top: true when acted on; quantity: the number; class: the class)")

    @model_validator(mode="after")
    def _one_form(self):
        if self.outcomes is not None and (self.decision is not None or self.value is not None):
            raise ValueError("give either outcomes (binary shorthand) or decision and value, not both")
        if self.outcomes is None and (self.decision is None or self.value is None):
            missing = " and ".join(name for name in ("decision", "value") if getattr(self, name) is None)
            raise ValueError(f"give outcomes (binary shorthand) or both decision and value (missing: {missing})")
        return self

    @model_serializer(mode="wrap")
    def _without_unused_forms(self, handler):
        """Leave out the form a spec does not use, so that a spec written before `value` existed keeps its hash."""
        dumped = handler(self)
        for name in ("outcomes", "decision", "value"):
            if getattr(self, name) is None:
                dumped.pop(name, None)
        return dumped


class MetricBound(Frozen):
    """Bounds of one test metric: the model is not deployed outside them."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self):
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class GateSpec(Frozen):
    """Thresholds a trained model must clear before it is deployed; each is a blocking check on its evaluation."""

    min_money: float = Field(description="least money the model must make on the test window, in the spec's currency")
    min_roc_auc: float = Field(default=0.5, ge=0.0, le=1.0,
                               description="binary_classification: least ROC AUC on the test window")
    metrics: dict[str, MetricBound] | None = Field(
        default=None,
        description="bounds of the task's own test metrics, e.g. {rmse: {max: 12}} (regression: rmse, mae, wape, "
                    "pinball; multiclass: log_loss, accuracy, macro_f1; binary_classification: roc_auc, log_loss)")
    min_gain_over_champion: float | None = Field(
        default=0.0,
        ge=0.0,
        description=(
            "least money, in the spec's currency, by which the model must beat the live champion on the model's "
            "own test window (the champion scored on the same rows with its own spec and threshold); the paired "
            "bootstrap 95% interval of the difference must also lie above zero. Passes when nothing is deployed yet. "
            "null waives the requirement (say why in the spec, e.g. the champion's features were retired): the "
            "comparison is still reported when the champion can be scored"
        ),
    )
    max_feature_roc_auc: float = Field(
        default=0.97,
        gt=0.5,
        le=1.0,
        description=(
            "leakage guard: a feature that on its own ranks the training rows' labels with at least this ROC AUC "
            "(in either direction) is taken to leak the outcome, and the model is not deployed"
        ),
    )

    @model_serializer(mode="wrap")
    def _without_unused_metrics(self, handler):
        """Leave out `metrics` when unused, so that a spec written before it existed keeps its hash."""
        dumped = handler(self)
        if self.metrics is None:
            dumped.pop("metrics", None)
        return dumped


class CadenceSpec(Frozen):
    """When the model scores and retrains."""

    scoring: Literal["daily"] = Field(default="daily", description="one scoring per entity date")
    predict_at: KnownBy = Field(description="when predictions for a date are made, relative to that date, at "
                                            "most 7 days before")
    retraining: Literal["weekly", "monthly", "quarterly", "never"] = "monthly"

    @field_validator("predict_at")
    @classmethod
    def _within_scheduled_days(cls, value: KnownBy) -> KnownBy:
        if not value.at_clock_time:
            raise ValueError(f"scoring is scheduled once a day at a clock time: give {{days_before: D, time: "
                             f"\"HH:MM\"}} (given {value.describe()})")
        if value.days_before > DAYS_AHEAD:
            raise ValueError(f"predictions can be made at most {DAYS_AHEAD} days before their date (daily "
                             f"partitions exist up to {DAYS_AHEAD} days ahead) (given days_before "
                             f"{value.days_before})")
        return value


class AcceptedSource(Frozen):
    """A reviewed decision that a model may depend on one source that is not internal."""

    trust: Literal["external_vendor", "model_output"] = Field(
        description="the source's trust level when this was reviewed; if the source is reclassified, the opt-in "
                    "fails until it is reviewed again")
    reason: str = Field(
        description="why this data is acceptable for this model, and what guards the model if it goes wrong "
                    "(at least 20 characters)")
    reviewed_by: str = Field(
        pattern=r"^(team:[A-Za-z0-9_-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$",
        description="who reviewed and accepts the dependency: an e-mail address or team:<name>")
    reviewed_on: dt.date = Field(description="the day of the review")

    @field_validator("reason")
    @classmethod
    def _substantive(cls, value: str) -> str:
        if len(" ".join(value.split())) < 20:
            raise ValueError("say in at least 20 characters why this data is acceptable for the model and what "
                             "guards it if the data goes wrong")
        return value


class DataDependencies(Frozen):
    """The model's opt-ins to sources that are not internal (external vendors' data, other models' outputs)."""

    accept: dict[Identifier, AcceptedSource] = Field(
        default_factory=dict,
        description="source name -> the reviewed opt-in; required for every external_vendor or model_output "
                    "source the model reads through its entity or its features (see ml-platform dependencies), "
                    "and only for those")


class ScoringSpec(Frozen):
    """What batch scoring stores beside each prediction."""

    contributions: bool = Field(
        default=False,
        description="store each prediction's feature contributions (exact TreeSHAP of a LightGBM model: expected "
                    "value and one contribution per feature, on the model's raw scale) in the predictions table's "
                    "`contributions` column, for `ml-platform explain` to read; off by default because it slows "
                    "scoring many times over (docs/attributions.md)")


class ModelSpec(Header):
    """One model: where its rows come from, what it predicts, how it learns, and how it is judged in money."""

    kind: Literal["model"]
    entity: Identifier = Field(description="the daily source whose rows the model predicts for")
    label: LabelSpec
    filter: SqlExpression | None = Field(default=None, description="SQL condition on the entity's rows to keep")
    features: list[Identifier] = Field(min_length=1, description="feature names from the feature library")
    split: TimeSplit
    algorithm: Algorithm
    money: MoneySpec
    gate: GateSpec
    cadence: CadenceSpec
    slices: list[Identifier] = Field(
        default_factory=list,
        # left out of the spec's hash when empty, so that specs written before `slices` keep their hash
        exclude_if=lambda value: not value,
        description=(
            "names that reports break the test money down by, one table and plot each: a column of the entity or "
            "one of the model's features (a feature of the library the model does not use is not allowed). Text, "
            "booleans, dates and numbers with at most 10 distinct values on the test rows slice by value; other "
            "numbers are cut into deciles of the test rows. Missing values are the slice '(missing)'"))
    slice_column: Identifier | None = Field(
        default=None,
        description="one entity column that reports break money down by; superseded by `slices` (kept for the "
                    "specs that use it: give one of the two)")
    data_dependencies: DataDependencies = Field(
        default_factory=DataDependencies,
        description="opt-ins to the sources the model depends on that are not internal")
    scoring: ScoringSpec | None = Field(
        default=None,
        # absent from the spec's hash when not declared; Catalog.model_payload leaves it out always: what scoring
        # stores does not change what the model learns, so turning it on does not retrain
        exclude_if=lambda value: value is None,
        description="what batch scoring stores beside each prediction, e.g. {contributions: true}")

    @field_validator("features")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"features listed twice: {', '.join(duplicates)}")
        return value

    @field_validator("slices")
    @classmethod
    def _unique_slices(cls, value: list[str]) -> list[str]:
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"slices listed twice: {', '.join(duplicates)}")
        return value

    @field_validator("slice_column")
    @classmethod
    def _one_way_to_slice(cls, value: str | None, info: ValidationInfo) -> str | None:
        slices = info.data.get("slices") or []
        if value and slices:
            raise ValueError("give either slices or slice_column (which slices supersedes), not both: write "
                             f"slices: [{', '.join(dict.fromkeys([value, *slices]))}]")
        return value

    @field_validator("scoring")
    @classmethod
    def _contributions_of_lightgbm(cls, value: ScoringSpec | None, info: ValidationInfo) -> ScoringSpec | None:
        algorithm = info.data.get("algorithm")
        if value is not None and value.contributions and algorithm is not None and algorithm.kind != "lightgbm":
            raise ValueError(f"contributions are stored by scoring for lightgbm models only (exact TreeSHAP); a "
                             f"{algorithm.kind} model's are sampled Shapley values, too slow to compute for every "
                             f"row: leave contributions off and use ml-platform explain, which computes them on "
                             f"demand")
        return value

    def slice_names(self) -> list[str]:
        """The names money is broken down by: `slices`, or the older `slice_column` alone."""
        return list(self.slices) if self.slices else [self.slice_column] if self.slice_column else []


SpecDocument = Annotated[Union[SourceSpec, FeatureSetSpec, EntitySpec, ModelSpec], Field(discriminator="kind")]
KINDS = {"source": SourceSpec, "feature_set": FeatureSetSpec, "entity": EntitySpec, "model": ModelSpec}


def is_identifier(value: str) -> bool:
    """True when value is a valid spec name."""
    return re.match(IDENTIFIER_PATTERN, value) is not None
