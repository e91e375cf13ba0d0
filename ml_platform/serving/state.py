"""The served state and its hot swap: built from a fresh copy of the warehouse, replaced as a whole when the
promotion log or the recorded data versions change, never modified in place."""

from __future__ import annotations

import datetime as dt
import gc
import sys
import threading
from pathlib import Path

from ml_platform import grains
from ml_platform.deployment.promotion import challenger
from ml_platform.errors import PlatformError
from ml_platform.features.compute import entity_table
from ml_platform.features.library import load_catalog
from ml_platform.project import Project
from ml_platform.serving.errors import ServingError
from ml_platform.serving.features import FeatureReader
from ml_platform.serving.mirror import Fingerprint, copy_warehouse, read_fingerprint
from ml_platform.serving.models import load_champion, load_version
from ml_platform.serving.predict import Served, key_types
from ml_platform.storage import registry
from ml_platform.storage.artifacts import ArtifactStore

POLL_SECONDS = 0.5


def build_served(project: Project) -> tuple[Served, Fingerprint, list[str]]:
    """A served state from a fresh copy of the project's warehouse; the models that cannot be served, in words."""
    catalog = load_catalog(project.specs_dir, project.root)
    connection, fingerprint = copy_warehouse(project.storage.warehouse, catalog)
    artifacts = ArtifactStore(root=str(project.storage.artifacts))
    champions, shadows, data_until, keys, problems = {}, {}, {}, {}, []
    for model in sorted(catalog.models):
        try:
            champion = load_champion(connection, artifacts, catalog, model)
            if champion is None:
                problems.append(f"{model}: no version deployed yet")
                continue
            last = connection.execute(f"SELECT CAST(max(partition_date) AS DATE) FROM "
                                      f"{entity_table(catalog, champion.spec.entity)}").fetchall()[0][0]
            if last is None:
                problems.append(f"{model}: '{champion.spec.entity}' holds no rows yet")
                continue
            champions[model] = champion
            keys[model] = key_types(connection, catalog, champion)
            # the end of its last partition: a day, or a population's week or month
            data_until[model] = grains.shift(catalog.entity_rows(champion.spec.entity).grain,
                                             dt.datetime.combine(last, dt.time()), 1)
            shadowed = challenger(connection, model)
            if shadowed is not None:
                trained = registry.models.by_version(connection, shadowed.model_version)
                if trained is not None:
                    shadows[model] = load_version(connection, artifacts, catalog, trained, None)
        except PlatformError as error:  # a missing or modified artifact too: the other models are still served
            problems.append(f"{model}: {error}")
    reader = FeatureReader(connection, catalog)
    for model in [*champions.values(), *shadows.values()]:
        reader.warm(model.spec)
    return Served(connection, reader, catalog, champions, shadows, data_until, keys), fingerprint, problems


def settle() -> None:
    """Move every object alive into the permanent generation (`gc.freeze`), once a served state is built.

    The server holds a few hundred thousand long-lived objects (the libraries, the catalog, the models, the
    entity's key index); a full collection walked them all, about 80-90 ms with the GIL held, and stalled the
    requests under way: a burst of first requests of a day took 180 ms instead of 90 when one fell into it
    (measured in-process with `gc.callbacks`). Frozen, they are no longer walked; a state replaced later is still
    freed when its last request ends (reference counting: it holds no cycles worth counting, 9 small objects
    measured)."""
    gc.freeze()


class ServedState:
    """Holds the current served state; a background thread rebuilds it when the warehouse's fingerprint changes
    and swaps the reference (a request keeps the state it started with)."""

    def __init__(self, project: Project, poll_seconds: float = POLL_SECONDS):
        self.project = project
        self.poll_seconds = poll_seconds
        self.current, self.fingerprint, self.problems = build_served(project)
        settle()
        self.reloads = 0
        self.last_reload_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Rebuild and swap when the warehouse changed; True when it did. A writer holding the file: no change."""
        seen = read_fingerprint(self.project.storage.warehouse)
        if seen is None or seen == self.fingerprint:
            return False
        served, fingerprint, problems = build_served(self.project)
        lost = sorted(model for model in self.current.champions
                      if model not in served.champions and model in served.catalog.models)
        if lost:  # a model served now would answer 404 after the swap: keep the old state, try again next poll
            served.connection.close()
            raise ServingError(f"the rebuilt state cannot serve {', '.join(lost)} ({'; '.join(problems)})")
        self.current, self.fingerprint, self.problems = served, fingerprint, problems  # one reference each
        settle()
        self.reloads += 1
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
                self.last_reload_error = None
            except Exception as error:  # the old state keeps serving; /health says why the new one is not
                self.last_reload_error = f"{type(error).__name__}: {error}"
                print(f"ml-platform serve: reload failed, serving the previous state: {self.last_reload_error}",
                      file=sys.stderr)

    def start(self) -> None:
        """Start watching the warehouse for promotions, rollbacks and new data."""
        self._thread = threading.Thread(target=self._watch, name="served-state-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def data_folder(project: Project) -> Path:
    """Where the server logs what it served."""
    return project.data_dir
