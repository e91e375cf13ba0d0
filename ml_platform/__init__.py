"""ml_platform: one YAML spec per model, carried by Dagster from sources to production predictions."""

__version__ = "0.1.0"
