"""Named points where crash tests stop the platform, to kill it there and check that nothing half-written shows.

Inert unless ML_PLATFORM_PAUSE_AT names the point: then the process writes its pid to the file named by
ML_PLATFORM_PAUSE_SIGNAL and sleeps until it is killed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

POINTS = (
    "artifact-written:snapshots",  # a snapshot is in its temporary file, not yet published
    "artifact-written:models",     # likewise a model artifact
    "artifact-written:reports",    # likewise an evaluation report
    "partition-range-written",  # source or feature rows are replaced inside their transaction, not yet committed
    "predictions-written",      # a day of predictions is inserted inside its transaction, not yet committed
)


def pause_point(name: str) -> None:
    """Stop here for a crash test when asked to; do nothing otherwise."""
    if os.environ.get("ML_PLATFORM_PAUSE_AT") != name:
        return
    Path(os.environ["ML_PLATFORM_PAUSE_SIGNAL"]).write_text(str(os.getpid()))
    time.sleep(600)
