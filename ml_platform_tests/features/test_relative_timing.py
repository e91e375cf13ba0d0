"""Feature timing relative to the entity row's own time (`known_by`: hours, days or months before it, or days before
its date at a clock time): the same prediction time in Python and in SQL, and the point-in-time proof cutting each
row of a monthly entity at its own prediction time."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from ml_platform.entities.population import build_partition
from ml_platform.features.library import load_catalog
from ml_platform.features.proof import PointInTimeError
from ml_platform.features.refresh import refresh_feature_set
from ml_platform.features.timing import prediction_time, prediction_time_sql
from ml_platform.specs.models import FeatureSetSpec, KnownBy
from ml_platform.storage.warehouse import open_warehouse
from ml_platform_tests.features.test_point_in_time import feature_set, load_sources
from ml_platform_tests.helpers import write_yaml

FORMS = [  # (known_by, row time, prediction time)
    ({"days_before": 1, "time": "18:00"}, dt.datetime(2013, 1, 5), dt.datetime(2013, 1, 4, 18)),
    ({"days_before": 1, "time": "18:00"}, dt.datetime(2013, 1, 5, 9, 30), dt.datetime(2013, 1, 4, 18)),
    ({"hours_before": 24}, dt.datetime(2013, 1, 5, 9, 30), dt.datetime(2013, 1, 4, 9, 30)),
    ({"hours_before": 3}, dt.datetime(2013, 1, 5, 1), dt.datetime(2013, 1, 4, 22)),
    ({"days_before": 3}, dt.datetime(2013, 3, 2, 7, 15), dt.datetime(2013, 2, 27, 7, 15)),
    ({"months_before": 1}, dt.datetime(2024, 3, 31, 10), dt.datetime(2024, 2, 29, 10)),  # clamped as DuckDB does
    ({"months_before": 1}, dt.datetime(2024, 3, 1), dt.datetime(2024, 2, 1)),
    ({"months_before": 13}, dt.datetime(2024, 1, 15, 6), dt.datetime(2022, 12, 15, 6)),
]


@pytest.mark.parametrize("form, row_time, expected", FORMS)
def test_every_form_gives_the_same_prediction_time_in_python_and_in_sql(form, row_time, expected):
    known_by = KnownBy.model_validate(form)
    literal = f"TIMESTAMP '{row_time.isoformat(sep=' ')}'"
    in_sql = duckdb.connect().execute(f"SELECT {prediction_time_sql(known_by, literal)}").fetchall()[0][0]
    assert prediction_time(known_by, row_time) == in_sql == expected


def test_the_clock_form_keeps_its_serialization_and_the_other_forms_leave_out_unused_fields():
    assert KnownBy(days_before=1, time="18:00").model_dump(mode="json") == {"days_before": 1, "time": "18:00"}
    assert KnownBy(hours_before=24).model_dump(mode="json") == {"hours_before": 24}
    assert KnownBy(months_before=1).describe() == "1 month(s) before the row's time"


# --- a monthly entity: customers who bought in the month before, at each month's start -----------------------------

MONTHLY = {"spec_version": 1, "kind": "entity", "name": "customer_months", "owner": "team:test",
           "description": "each customer with a purchase in the month before, at the month's start",
           "keys": ["customer_id"], "grain": "monthly", "time": "month_start", "reads": ["purchases"],
           "lookback": {"months": 1},
           "population": "SELECT customer_id, CAST(b.partition_start AS DATE) AS month_start, count(*) AS bought "
                         "FROM purchases, bounds AS b GROUP BY ALL",
           "start": "2024-02-01", "end": "2024-03-31", "timezone": "UTC"}

SPEND_BEFORE = ("SELECT e.customer_id, (SELECT sum(p.amount) FROM purchases p WHERE p.customer_id = e.customer_id "
                "AND p.purchased_on < e.month_start{honest}) AS spend_before FROM entity e")
HONEST = SPEND_BEFORE.format(honest=" AND p.available_at <= e.prediction_time")
LEAKING = SPEND_BEFORE.format(honest="")  # the month before the row: known only after a month-ahead prediction


VISITS = {**MONTHLY, "name": "customer_visits", "time": "visit_time",
          "description": "each customer with a purchase in the month before, on day 7 x customer + 1 of the month",
          "population": "SELECT customer_id, b.partition_start + INTERVAL (7 * customer_id) DAY AS visit_time, "
                        "count(*) AS bought FROM purchases, bounds AS b GROUP BY ALL"}
VISIT_SPEND = ("SELECT e.customer_id, (SELECT sum(p.amount) FROM purchases p WHERE p.customer_id = e.customer_id "
               "AND p.purchased_on < CAST(e.visit_time AS DATE){honest}) AS spend_before FROM entity e")
VISIT_HONEST = VISIT_SPEND.format(honest=" AND p.available_at <= e.prediction_time")
VISIT_LEAK = VISIT_SPEND.format(honest="")  # the day before the visit: delivered at midnight, after 23:00


def _amount(day: dt.date, customer: int) -> float:
    return float(day.toordinal() % 7 + customer)


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """Purchases of three customers every day of January to March 2024, and the entity's two months built."""
    root = tmp_path_factory.mktemp("months")
    data = root / "data"
    data.mkdir()
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=offset) for offset in range(91)]
    (data / "purchases.csv").write_text("purchase_id,customer_id,purchased_on,amount\n" + "".join(
        f"{index * 10 + customer},{customer},{day},{_amount(day, customer)}\n"
        for index, day in enumerate(days) for customer in (1, 2, 3)))
    specs = root / "model_specs"
    write_yaml(specs / "sources" / "purchases.yaml", {
        "spec_version": 1, "kind": "source", "name": "purchases", "description": "test purchases", "owner": "team:test",
        "trust": "internal", "location": {"kind": "file", "path": "data/purchases.csv", "format": "csv"},
        "checks": {"min_rows_per_day": 1, "distribution": {"min_history_days": 30}},
        "columns": {"purchase_id": "INTEGER", "customer_id": "INTEGER", "purchased_on": "DATE", "amount": "DOUBLE"},
        "keys": ["purchase_id"],
        "partitioning": {"kind": "daily", "date": "purchased_on", "start": "2024-01-01", "end": "2024-03-31"}})
    write_yaml(specs / "entities" / "customer_months.yaml", MONTHLY)
    write_yaml(specs / "entities" / "customer_visits.yaml", VISITS)
    # on disk, so that the loader's checks accept a relative form over a monthly entity
    write_yaml(specs / "features" / "spend_a_month_ahead.yaml", feature_set(
        "spend_a_month_ahead", HONEST, ["spend_before"], ["purchases"], entity="customer_months",
        known_by={"months_before": 1}, lookback_days=62))
    catalog = load_catalog(specs, root)
    with open_warehouse(root / "warehouse.duckdb") as connection:
        load_sources(connection, catalog, root, dt.date(2024, 1, 1), dt.date(2024, 3, 31))
        for key in ("2024-02-01", "2024-03-01"):
            build_partition(connection, catalog, catalog.entities["customer_months"], key)
        build_partition(connection, catalog, catalog.entities["customer_visits"], "2024-02-01")
        yield connection, catalog


def _spend_until(moment: dt.datetime, month_start: dt.date, customer: int) -> float | None:
    """What the honest feature must hold: the customer's purchases before the month, delivered by `moment`."""
    known = [_amount(day, customer) for day in (dt.date(2024, 1, 1) + dt.timedelta(days=d) for d in range(91))
             if day < month_start and dt.datetime.combine(day + dt.timedelta(days=1), dt.time()) <= moment]
    return sum(known) if known else None


@pytest.mark.parametrize("known_by", [{"months_before": 1}, {"hours_before": 24}, {"days_before": 10}])
def test_an_honest_feature_of_a_monthly_entity_holds_what_was_known_at_each_row_s_prediction_time(months, known_by):
    connection, catalog = months
    name = f"honest_{next(iter(known_by))}"
    spec = FeatureSetSpec.model_validate(feature_set(name, HONEST, ["spend_before"], ["purchases"],
                                                     entity="customer_months", known_by=known_by, lookback_days=62))
    refresh = refresh_feature_set(connection, catalog, spec, dt.date(2024, 2, 1), dt.date(2024, 3, 1))
    assert refresh.proof.passed and refresh.rows == 6, refresh.proof.message()
    stored = connection.execute(f"SELECT customer_id, month_start, spend_before FROM features.{name} JOIN "
                                f"population.customer_months USING (customer_id, partition_date) ORDER BY 2, 1"
                                ).fetchall()
    known = KnownBy.model_validate(known_by)
    expected = [(customer, month, _spend_until(prediction_time(known, month), month, customer))
                for month in (dt.date(2024, 2, 1), dt.date(2024, 3, 1)) for customer in (1, 2, 3)]
    assert stored == expected
    assert stored[0][2] is None if known.months_before else stored[0][2] > 0  # a month ahead: nothing known yet


def test_a_month_ahead_feature_reading_the_month_before_reads_nothing_by_construction(months):
    """A population is computed one partition at a time, each cut at its rows' prediction time: the month before
    a row predicted a month ahead is not delivered yet, so the careless SQL reads nothing, and the proof agrees."""
    connection, catalog = months
    spec = FeatureSetSpec.model_validate(feature_set("leaking_month", LEAKING, ["spend_before"], ["purchases"],
                                                     entity="customer_months", known_by={"months_before": 1},
                                                     lookback_days=62))
    refresh = refresh_feature_set(connection, catalog, spec, dt.date(2024, 2, 1), dt.date(2024, 3, 1))
    assert refresh.proof.passed and refresh.proof.cuts_total == 2 and refresh.rows == 6
    stored = connection.execute("SELECT partition_date, spend_before FROM features.leaking_month ORDER BY 1, 2"
                                ).fetchall()
    january = [_spend_until(dt.datetime(2024, 2, 1), dt.date(2024, 2, 1), customer) for customer in (1, 2, 3)]
    assert stored == [(dt.date(2024, 2, 1), None)] * 3 + [(dt.date(2024, 3, 1), value) for value in sorted(january)]


def test_rows_of_one_partition_are_each_cut_at_their_own_prediction_time(months):
    """A monthly entity whose rows have their own times inside the month (customer c on day 7c + 1): one partition
    computed in one run is cut at its latest row's prediction time, so the earlier rows reach purchases delivered
    after theirs; the proof cuts each row at its own and fails, naming those rows."""
    connection, catalog = months
    spec = FeatureSetSpec.model_validate(feature_set("leaking_visit", VISIT_LEAK, ["spend_before"], ["purchases"],
                                                     entity="customer_visits", known_by={"hours_before": 1},
                                                     lookback_days=62))
    with pytest.raises(PointInTimeError) as raised:
        refresh_feature_set(connection, catalog, spec, dt.date(2024, 2, 1), dt.date(2024, 2, 1))
    proof = raised.value.proof
    assert proof.cuts_total == 3 and proof.rows == 3 and proof.differing_rows == 2, proof.message()
    assert [(d.key, d.cut) for d in proof.differences] == [("1", dt.datetime(2024, 2, 7, 23)),
                                                           ("2", dt.datetime(2024, 2, 14, 23))]
    assert proof.differences[0].sources == ("purchases",)
    assert connection.execute("SELECT count(*) FROM features.leaking_visit").fetchall() == [(0,)]
    honest = FeatureSetSpec.model_validate(feature_set("honest_visit", VISIT_HONEST, ["spend_before"], ["purchases"],
                                                       entity="customer_visits", known_by={"hours_before": 1},
                                                       lookback_days=62))
    refresh = refresh_feature_set(connection, catalog, honest, dt.date(2024, 2, 1), dt.date(2024, 2, 1))
    assert refresh.proof.passed and refresh.proof.cuts_total == 3, refresh.proof.message()
    stored = dict(connection.execute("SELECT customer_id, spend_before FROM features.honest_visit").fetchall())
    assert stored == {customer: _spend_until(dt.datetime(2024, 2, 7 * customer + 1) - dt.timedelta(hours=1),
                                             dt.date(2024, 2, 7 * customer + 1), customer) for customer in (1, 2, 3)}


def test_a_relative_form_is_accepted_by_the_loader_over_a_monthly_entity(months):
    _, catalog = months
    assert catalog.feature_sets["spend_a_month_ahead"].known_by == KnownBy(months_before=1)
