"""What a registered feature function declares: the specs check calls to it and hash its source as its version.

The functions themselves live in the feature library (`ml_platform.features.functions`); the catalog is handed
them when it is loaded, so the spec language never imports a later floor.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import Callable, Mapping


@dataclass(frozen=True)
class RegisteredFunction:
    """A Python function callable from feature SQL."""

    name: str
    function: Callable
    parameters: tuple[str, ...]
    returns: str
    description: str

    def version(self) -> str:
        """Hash of the function's source code."""
        return hashlib.sha256(inspect.getsource(self.function).encode()).hexdigest()[:12]


FunctionLibrary = Mapping[str, RegisteredFunction]
