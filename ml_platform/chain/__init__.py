"""The run-chain library: a project's Dagster instance prepared, stale partitions planned, then runs executed.

Assets with different partitions cannot share a run, so a model is carried from sources to production
predictions by a chain of runs: reference sources, daily sources and features, one training run (snapshot,
model, evaluation with its blocking gate, deployment), then scoring and outcomes. The demo, the replay, the CLI
and the tests call it; nothing here prints unless handed a `say`.
"""
