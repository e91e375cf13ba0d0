"""Tests of the warehouse registries."""
