"""Provenance: what made a training run, a model and a prediction, and whether it can be made again."""
