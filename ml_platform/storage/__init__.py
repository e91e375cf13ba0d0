"""Storage: the DuckDB warehouse, its append-only registries, the version index and the artifact store."""
