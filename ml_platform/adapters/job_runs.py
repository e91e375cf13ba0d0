"""A job executed with `dg.execute_job` (out of process: the run config's executor is honoured) with the run tags
`execute_in_process` would have given it.

Written for Dagster 1.13.27: `execute_job` takes no partition key, so the partition's tags are merged in as
`JobDefinition.execute_in_process` merges them, with `merge_run_tags` (dagster._core.execution.execute_in_process):
the job's own run tags, the caller's tags, then the partition key's tags (validated against the job, a dynamic
partition against the instance). `ReconstructableJob` (dagster._core.definitions.reconstruct) is the type
`dg.build_reconstructable_job` returns. Re-check on another version
(ml_platform_tests/adapters/test_dagster_version.py).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.execution.execute_in_process import merge_run_tags


def execute_reconstructable(job: ReconstructableJob, instance: dg.DagsterInstance, run_config: Mapping[str, Any],
                            tags: Mapping[str, str], partition_key: str | None = None,
                            asset_selection: Sequence[dg.AssetKey] | None = None) -> dg.JobExecutionResult:
    """Execute the job in the instance with its run config's executor, tagged as execute_in_process tags a run."""
    job_def = job.get_definition()
    run_tags = merge_run_tags(job_def=job_def, partition_key=partition_key, tags=tags,
                              asset_selection=asset_selection, instance=instance, run_config=run_config)
    return dg.execute_job(job, instance=instance, run_config=dict(run_config), tags=dict(run_tags),
                          raise_on_error=False, asset_selection=list(asset_selection) if asset_selection else None)
