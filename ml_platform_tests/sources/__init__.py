"""Tests of loading sources: data checks and partition health."""
