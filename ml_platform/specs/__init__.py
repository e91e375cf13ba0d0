"""Specs: the YAML files of sources, feature sets and models, loaded into typed specs and checked together."""
