"""The platform's code version: its release plus a hash of its own source files."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from ml_platform import __version__


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`<release>+<hash of every .py file of the package>`; changes with any change to platform code."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"
