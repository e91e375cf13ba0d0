"""What a stage reports besides the record it stored: flags that never go into the registry.

Callers used to add these keys to the registry row on the fly ({**row, "reused": True}); the stored record
stays exactly what the registry holds, and the flags travel beside it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, TypeVar

from ml_platform.records.registry import PromotionRecord

StoredRecord = TypeVar("StoredRecord")


@dataclass(frozen=True)
class Stored(Generic[StoredRecord]):
    """A record a stage stored, or found already stored for its identity (reused)."""

    record: StoredRecord
    reused: bool


@dataclass(frozen=True)
class PromotionOutcome:
    """The result of a promotion request: the live promotion, and how it came about."""

    record: PromotionRecord  # the appended promotion, or the current champion's when already the champion
    already_champion: bool
    recompared: bool  # beats_champion was checked again because the champion changed since the evaluation


@dataclass(frozen=True)
class LoggedPromotion:
    """One promotion of a model's log with the time it stopped being live."""

    record: PromotionRecord
    live_until: dt.datetime | None  # the next promotion's time; None while it is the champion


@dataclass(frozen=True)
class RollbackOutcome:
    """A rollback's appended promotion, the version it replaced and the checks its evaluation predates."""

    record: PromotionRecord
    previous: str  # the model version that was live before
    checks_not_in_evaluation: tuple[str, ...]
