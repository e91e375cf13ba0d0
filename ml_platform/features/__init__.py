"""Feature sets: SQL over the sources computed per day, recomputed only when their version changes."""
