"""The platform's one error base: a problem a person can act on, told in a message that says what and where.

Every error the platform raises on purpose derives from `PlatformError`; an asset body turns it into a Dagster
failure in one place (`as_dagster_failure`), so the run's page shows the message, not a traceback. Anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import dagster as dg


class PlatformError(Exception):
    """A problem with the user's specs, data, registry or request, described so that a person can act on it."""


@contextmanager
def as_dagster_failure(what: str | None = None) -> Iterator[None]:
    """Inside an asset body: a PlatformError becomes a `dg.Failure` carrying its message (prefixed by `what`)."""
    try:
        yield
    except PlatformError as error:
        raise dg.Failure(description=f"{what}: {error}" if what else str(error)) from error
