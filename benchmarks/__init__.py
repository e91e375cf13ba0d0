"""Performance harness: scripts anyone can run, and the figures they printed in RESULTS.md."""
