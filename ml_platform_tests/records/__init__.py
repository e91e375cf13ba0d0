"""Tests of the frozen record types."""
