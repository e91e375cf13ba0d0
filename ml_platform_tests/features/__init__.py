"""Tests of feature sets: computing, caching by version, registered functions."""
