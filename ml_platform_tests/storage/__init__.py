"""Tests of the warehouse, its registries and the version index."""
