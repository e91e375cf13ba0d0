"""Tests of the run-chain library: planning from stored versions."""
