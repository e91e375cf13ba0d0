"""Subcommands added by this module's owner (see register())."""

from __future__ import annotations


def register(commands) -> None:
    """Add this module's subcommands (none yet)."""
