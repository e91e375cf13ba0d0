"""Frozen record types that cross stage boundaries and go into the registries.

This package is the bottom floor of the import layers: it imports only the standard library and pydantic, never
anything from ml_platform, so every other package may import it.
"""
