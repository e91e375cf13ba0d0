"""Challenger against champion, in money, on the same rows: the `beats_champion` gate check.

The champion is scored on the challenger's test rows with its own recorded spec (its features, filter and
threshold), and both sets of decisions are valued with the challenger's money values for those rows. Rows the
champion's own filter leaves out would not be scored by it in production, so they count as not flagged.

Two rules, and the check says which one decided:
- clearly better (the default): the gain is at least the spec's margin and its 95% paired-bootstrap interval is
  clear of 0;
- champion under water: when the champion's realized money in production over its last 7 judged days up to the end
  of the test window is `losing money` or `below the interval` (ml_platform.evaluation.realized), a challenger that
  makes money on the test rows and gains at least the margin over the champion on them passes on the point
  estimate, without the interval requirement: the champion's own promise has already failed in production.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

from ml_platform.evaluation.money import OutcomeValues, paired_bootstrap_interval
from ml_platform.evaluation.predictions_file import read_predictions
from ml_platform.evaluation.realized import EVIDENCE_DAYS, Verdict, recent_verdict
from ml_platform.grains import PERIOD_NOUN
from ml_platform.records.gate import ChampionComparison, GateCheck
from ml_platform.records.registry import EvaluationRecord, PromotionRecord
from ml_platform.specs.catalog import Catalog
from ml_platform.specs.models import ModelSpec
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore
from ml_platform.training.inference import ScoringError, score_rows


def window_of(rows: pd.DataFrame) -> tuple[dt.date, dt.date]:
    """First and last partition_date of some rows."""
    return pd.Timestamp(rows["partition_date"].min()).date(), pd.Timestamp(rows["partition_date"].max()).date()


def _champion_flags(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                   champion: PromotionRecord, model: ModelSpec, rows: pd.DataFrame) -> tuple[np.ndarray, dict]:
    """The champion's decisions on the given rows (entity keys and partition_date), and the ChampionComparison
    fields saying how they were made.

    Raises ScoringError when the champion cannot score these rows (changed feature sets, missing features,
    another entity, no artifact).
    """
    trained = registry.models.by_version(connection, champion.model_version)
    evaluation = registry.evaluations.get(connection, model.name, champion.training_run)
    if trained is None or evaluation is None:
        raise ScoringError(f"{champion.model_version} has no registered artifact or evaluation")
    entity = catalog.entity_rows(model.entity)
    # a population's keys name a row within its partition: its rows are told apart by the partition too
    keys = list(entity.keys) + (["partition_date"] if entity.is_population else [])
    start, end = window_of(rows)
    threshold = float(evaluation.summary.threshold)
    facts = {"champion": champion.model_version, "champion_training_run": champion.training_run,
             "champion_promotion_id": champion.promotion_id, "champion_threshold": threshold}
    stored = _stored_decisions(connection, artifacts, evaluation, keys, rows, threshold)
    if stored is not None:
        return stored, {**facts, "rows_outside_champion_filter": 0,
                        "champion_scores_from": "its own evaluation on the same test rows"}
    spec, scored = score_rows(connection, artifacts, catalog, trained, threshold, start, end)
    if spec.entity != model.entity:
        raise ScoringError(f"{champion.model_version} predicts for '{spec.entity}' rows, this model for "
                           f"'{model.entity}' rows")
    joined = rows[keys].merge(scored[keys + ["flagged"]], on=keys, how="left", validate="one_to_one")
    outside = int(joined["flagged"].isna().sum())
    flags = joined["flagged"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return flags, {**facts, "rows_outside_champion_filter": outside}


def _stored_decisions(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, evaluation: EvaluationRecord,
                      keys: list[str], rows: pd.DataFrame, threshold: float) -> np.ndarray | None:
    """The champion's decisions from the test predictions its own evaluation stored, when they cover every row.

    Those scores were made with the features the champion was trained on, so the comparison stays possible after
    a feature set changed (the change that the challenger is usually about); otherwise None.
    """
    stored = read_predictions(connection, artifacts, evaluation.summary)
    stored = stored[stored["split"] == "test"]
    if not set(keys) <= set(stored.columns):
        return None
    joined = rows[keys].merge(stored[keys + ["score"]].drop_duplicates(keys), on=keys, how="left",
                              validate="one_to_one")
    if joined["score"].isna().any():
        return None
    return (joined["score"].to_numpy(dtype=float) >= threshold)


def periods_text(count: int, grain: str) -> str:
    """`13 week(s)`: a count of the partitions the bootstrap resampled, in the entity's grain, worded as the
    realized-money verdicts word theirs."""
    return f"{count} {PERIOD_NOUN[grain]}(s)"


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


def beats_champion(connection: duckdb.DuckDBPyConnection, artifacts: ArtifactStore, catalog: Catalog,
                   model: ModelSpec, challenger_version: str, rows: pd.DataFrame, values: OutcomeValues,
                   flags: np.ndarray, seed: int) -> GateCheck[ChampionComparison]:
    """The beats_champion gate check for a challenger's test rows, money values and decisions."""
    def champion_money(champion: PromotionRecord) -> tuple[np.ndarray, dict]:
        decisions, facts = _champion_flags(connection, artifacts, catalog, champion, model, rows)
        return values.per_row(decisions), facts

    return judge_in_money(connection, model, challenger_version, rows, values.per_row(flags), champion_money, seed,
                          lambda: catalog.entity_rows(model.entity).grain)


def judge_in_money(connection: duckdb.DuckDBPyConnection, model: ModelSpec, challenger_version: str,
                   rows: pd.DataFrame, challenger_rows: np.ndarray,
                   champion_money: Callable[[PromotionRecord], tuple[np.ndarray, dict]],
                   seed: int, grain: Callable[[], str]) -> GateCheck[ChampionComparison]:
    """The beats_champion check of any task: the challenger's per-row money on its test rows against the live
    champion's on the same rows (`champion_money` values the champion's own decisions there, with the
    ChampionComparison facts saying how they were made, or raises ScoringError). The bootstrap resamples whole
    partitions of the entity's grain (days, weeks, months), and says which: `grain()`, asked only when a champion
    is there to compare with."""
    currency = model.money.currency
    margin = model.gate.min_gain_over_champion
    waived = margin is None
    waiver = "waived by the spec (gate.min_gain_over_champion is null), so it passes; "
    champion = registry.promotions.champion(connection, model.name)
    details = {"margin": margin, "waived": waived, "currency": currency, "rows": int(len(rows)),
               "compared_at": registry.now().isoformat(timespec="seconds")}

    def check(passed: bool, why: str, **facts) -> GateCheck[ChampionComparison]:
        return GateCheck[ChampionComparison](passed=passed, why=why,
                                             details=ChampionComparison(**details, **facts))

    if champion is None:
        return check(True, "no champion is deployed yet: there is nothing to beat", champion=None)
    if champion.model_version == challenger_version:
        return check(True, f"{challenger_version} is itself the live champion", champion=challenger_version)
    try:
        champion_rows, facts = champion_money(champion)
    except ScoringError as error:
        unscored = f"the champion {champion.model_version} cannot be scored on this run's test rows"
        if waived:
            return check(True, f"{waiver}{unscored}: {error}", champion=champion.model_version)
        return check(False, f"{unscored}, so the challenger cannot be shown to beat it: {error} (a spec may waive "
                            f"the comparison with gate.min_gain_over_champion: null)",
                     champion=champion.model_version)
    facts = dict(facts)
    challenger_rows = np.asarray(challenger_rows, dtype="float64")
    champion_rows = np.asarray(champion_rows, dtype="float64")
    challenger_money, champion_money_sum = float(challenger_rows.sum()), float(champion_rows.sum())
    gain = challenger_money - champion_money_sum
    days = rows["partition_date"].to_numpy()
    low, high = paired_bootstrap_interval(challenger_rows, champion_rows, seed, groups=days)
    facts.update({"challenger_money": challenger_money, "champion_money": champion_money_sum, "gain": gain,
                  "gain_interval_95": (low, high), "days": int(len(np.unique(days))),
                  "window": tuple(str(day) for day in window_of(rows))})
    measured = (f"{_money(challenger_money, currency)} against {_money(champion_money_sum, currency)} for champion "
                f"{champion.model_version} on the same {len(rows):,} test rows: gain {_money(gain, currency)}, "
                f"95% interval {_money(low, currency)} to {_money(high, currency)} (paired bootstrap over "
                f"{periods_text(len(np.unique(days)), grain())})")
    if waived:
        return check(True, f"{waiver}measured {measured}", **facts)
    realized = recent_verdict(connection, model.name, champion.model_version, window_of(rows)[1], EVIDENCE_DAYS)
    if realized is not None:
        facts.update({"champion_realized_verdict": realized.state, "champion_realized_money": realized.realized,
                      "champion_realized_interval": (realized.low, realized.high),
                      "champion_realized_window": (realized.first_day, realized.last_day)})
    passed, why, rule = champion_rule(gain, low, margin, challenger_money, realized, measured, currency)
    return check(passed, why, rule=rule, **facts)


def champion_rule(gain: float, gain_low: float, margin: float, challenger_money: float, realized: Verdict | None,
                  measured: str, currency: str) -> tuple[bool, str, str]:
    """(passed, why, rule) of the comparison: "clearly better" unless the champion is under water in production
    (see the module docstring)."""
    in_production = (f"; in production the champion is {realized.text()}" if realized else
                     f"; the champion's realized money is not known for {EVIDENCE_DAYS} judged days")
    if realized is not None and realized.under_water:
        passed = bool(gain >= margin and challenger_money > 0)
        if passed:
            why = (f"beats a champion under water by at least {_money(margin, currency)} on the point estimate "
                   f"(the interval requirement is dropped because the champion is {realized.state} in "
                   f"production): {measured}{in_production}")
        else:
            why = (f"does not beat the champion, even under water (that rule needs a gain of at least "
                   f"{_money(margin, currency)} and money above 0 on the test rows): {measured}{in_production}")
        return passed, why, "champion under water"
    if gain < margin:
        why = f"does not beat the champion by the margin of {_money(margin, currency)}: {measured}{in_production}"
    elif gain_low <= 0:
        why = f"not clearly better than the champion (the interval of the gain reaches 0): {measured}{in_production}"
    else:
        why = f"beats the champion by at least {_money(margin, currency)}, clear of 0: {measured}{in_production}"
    return bool(gain >= margin and gain_low > 0), why, "clearly better"
