"""What a served request can get wrong (a 4xx, its message naming the field and what is allowed), and what the
server itself cannot do (a 5xx, or a refusal to start)."""

from __future__ import annotations

from ml_platform.errors import PlatformError


class BadRequestError(PlatformError, ValueError):
    """The request names nothing known or holds a value of the wrong kind; `status` is its HTTP status."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class ServingError(PlatformError, RuntimeError):
    """The server cannot serve a model: it is not deployed, its artifact or its data is missing."""
