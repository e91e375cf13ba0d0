"""Scoring: production predictions of the champion with provenance, and the challenger scored in shadow."""
