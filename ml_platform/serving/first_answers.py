"""The answers of a day's first requests, scored for their own rows alone.

A model version's answers for a day are kept whole (`scored_day.score_day`, once per version, day and way of
serving); scoring the whole day costs tens of milliseconds, which the first request of a day would pay on top of
its features. So the first request of a day scores only the rows it asks for (`scored_day.score_keys`, for models
whose rows score alone: `scored_day.scores_rows_alone`); requests that arrive while that scoring runs add their
rows to the next scoring of the day (one call for all of them, not one each). Once an answer scored so has left,
the whole day is scored in the background (`FeatureReader.complete_days`), and a request asking for rows not
scored yet meanwhile scores (or waits for) the whole day, which then answers every later request.
"""

from __future__ import annotations

import threading


class FirstAnswers:
    """One (model version, day, how served)'s answers scored row by row before its whole day is scored."""

    def __init__(self, model, how: str) -> None:
        self.model = model  # the LoadedModel version whose answers these are, and how its features are served
        self.how = how
        self.completing = False  # its whole day is being scored after an answer has left (`complete_days`)
        self.rows: dict = {}  # key identity -> ServedRow; an asked identity without one: the model's filter drops it
        self.asked: set = set()  # identities scored (answered or dropped)
        self.pending: dict = {}  # identity -> key values: asked by requests waiting for the next scoring
        self.first_done = False  # a scoring of the day is over: rows not asked yet are scored with the whole day
        self.scoring = threading.Lock()  # one scoring of the day at a time
