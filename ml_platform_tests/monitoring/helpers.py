"""Monitoring runs on a test project, and PSI by its definition to check monitoring's binning against."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd

from ml_platform import names
from ml_platform.monitoring.factory import build_monitoring_assets
from ml_platform_tests.evaluation.january import MODEL, Runs, champion_and_challenger, copy_of


def definition_psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    """PSI as monitoring first computed it: bins recomputed from the reference (numbers at its `bins`-quantiles),
    each value coded on its own."""
    def psi(expected, actual):
        expected, actual = np.maximum(expected, 1e-4), np.maximum(actual, 1e-4)
        return float(np.sum((actual - expected) * np.log(actual / expected)))

    def shares(codes, bins):
        counts = np.bincount(codes, minlength=bins).astype(float)
        return counts / max(counts.sum(), 1.0)

    if reference.dtype == object or isinstance(reference.dtype, pd.StringDtype) or reference.dtype == bool:
        categories = {value: index for index, value in enumerate(sorted(reference.dropna().astype(str).unique()))}
        unseen, missing = len(categories), len(categories) + 1

        def codes(values):
            return np.array([missing if pd.isna(value) else categories.get(str(value), unseen) for value in values],
                            dtype=int)

        return psi(shares(codes(reference), missing + 1), shares(codes(current), missing + 1))
    known = pd.to_numeric(reference, errors="coerce").to_numpy(dtype=float)
    present = known[np.isfinite(known)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else np.array([])
    missing = len(edges) + 1

    def numeric_codes(values):
        numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
        return np.where(np.isfinite(numbers), np.searchsorted(edges, numbers, side="right"), missing)

    return psi(shares(numeric_codes(known), missing + 1), shares(numeric_codes(current), missing + 1))


def monitor(runs: Runs, stages: list[str], first: dt.date, last: dt.date):
    """Materialize the model's monitoring assets (added to the project's definitions unless already wired in)."""
    chain = runs.chain()
    model = chain.catalog.models[MODEL]
    wired = {key for assets in chain.definitions.assets for key in assets.keys}
    extra = [asset for asset in build_monitoring_assets(chain.catalog, model) if asset.key not in wired]
    job = dg.define_asset_job("monitor", selection=[names.stage_key(stage, MODEL) for stage in stages])
    chain.definitions = dg.Definitions.merge(chain.definitions, dg.Definitions(assets=extra, jobs=[job]))
    return chain.run("monitor", "monitor", date_range=(first, last))


def champion_scored_on(folder, monkeypatch, day: dt.date) -> Runs:
    """A copy of the January project (the demo model deployed as champion) in `folder`, its Dagster home set for
    the test, and `day` scored in batch."""
    project = copy_of(champion_and_challenger(), folder / "project")
    monkeypatch.setenv("DAGSTER_HOME", str(project.dagster_home))
    runs = Runs(project)
    assert runs.score(day, day).success
    return runs
