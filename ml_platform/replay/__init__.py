"""Living through past days on a simulated clock: Dagster's own daemons ticked in this process, one line a day."""
