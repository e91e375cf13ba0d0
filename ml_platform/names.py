"""Every contract name of the platform, built in one place: asset keys, jobs, schedules, sensors, partitions,
warehouse schemas, tables and views, run keys, run tags and metadata keys.

The bottom floor: it imports only the standard library and dagster, and takes plain strings (model, source, feature
set and stage names), never spec objects, so any module may call it. A name here is a contract with the Dagster
instance, the warehouse file and the run history: changing one orphans what was stored under the old name
(`ml_platform_tests/test_names.py` pins each).
"""

from __future__ import annotations

import datetime as dt
import re

import dagster as dg

# --- asset keys ---------------------------------------------------------------------------------------------------

MODEL_STAGES = ("snapshot", "model", "evaluation", "deployment", "predictions", "monitoring", "outcomes")
TRAINING_STAGES = MODEL_STAGES[:4]  # the stages of one training run, partitioned by it


def stage_key(stage: str, model: str) -> dg.AssetKey:
    """The asset key of one stage of a model: `[model, stage]`, so Dagster titles the graph's node by its stage."""
    if stage not in MODEL_STAGES:
        raise ValueError(f"unknown model stage {stage!r}")
    return dg.AssetKey([model, stage])


def stage_of(key: dg.AssetKey) -> str | None:
    """The model stage an asset key names, or None for a source, a feature set or any other key."""
    path = key.path
    if len(path) == 2 and path[0] not in RESERVED_KEY_PREFIXES and path[1] in MODEL_STAGES:
        return path[1]
    return None


def entity_key(name: str) -> dg.AssetKey:
    """The asset key of an entity spec's population: `["entity", name]`."""
    return dg.AssetKey(["entity", name])


def source_key(name: str) -> dg.AssetKey:
    """The asset key of a source: `["source", name]`."""
    return dg.AssetKey(["source", name])


def feature_key(name: str) -> dg.AssetKey:
    """The asset key of a feature set: `["features", name]`."""
    return dg.AssetKey(["features", name])


RESERVED_KEY_PREFIXES = ("source", "features", "entity")  # first part of source, feature and entity keys: no model
ENTITIES_GROUP = "entities"  # the asset group of every entity spec's population
SOURCES_GROUP = "sources"  # the asset group of every source
FEATURES_GROUP = "features"  # the asset group of every feature set


def model_group(model: str) -> str:
    """The asset group of a model's stages: the model's name."""
    return model


# --- version index (registry.partition_versions.asset) ------------------------------------------------------------

def source_asset(name: str) -> str:
    """The version-index name of a source: `source/<name>`."""
    return f"source/{name}"


def population_asset(name: str) -> str:
    """The version-index name of an entity spec's population: `entity/<name>`."""
    return f"entity/{name}"


def feature_asset(name: str) -> str:
    """The version-index name of a feature set: `features/<name>`."""
    return f"features/{name}"


def stage_asset(stage: str, model: str) -> str:
    """The version-index name of a model's daily stage (predictions, outcomes): `<stage>/<model>`."""
    return f"{stage}/{model}"


# --- jobs, schedules, sensors, partitions -------------------------------------------------------------------------

REFERENCE_JOB = "reference_sources"  # the job that loads every source loaded whole
DAILY_JOB = "daily_data"  # the job that loads daily sources and computes feature sets, one day at a time


def training_job_name(model: str) -> str:
    """The job that builds a training run (snapshot, model, evaluation, deployment): `<model>__training`."""
    return f"{model}__training"


def scoring_job_name(model: str) -> str:
    """The job that scores days with the champion and monitors them: `<model>__scoring`."""
    return f"{model}__scoring"


def daily_job_name(model: str) -> str:
    """The job the daily schedule runs (a day's data, then its scores): `<model>__daily`."""
    return f"{model}__daily"


def outcomes_job_name(model: str) -> str:
    """The job that judges a scored day once its labels are known: `<model>__judging`."""
    # not `<model>__outcomes`: that is the op name Dagster derives from the key `[model, "outcomes"]`, and a job and
    # an op may not share a name in one repository
    return f"{model}__judging"


def sources_job_name(model: str) -> str:
    """The job loading one day of the daily sources of a model over an entity spec: `<model>__sources`."""
    return f"{model}__sources"


def sources_schedule_name(model: str) -> str:
    """The schedule loading each day of those sources: `<model>__daily_sources`."""
    return f"{model}__daily_sources"


def scoring_schedule_name(model: str) -> str:
    """The schedule that loads and scores each day: `<model>__daily_scoring`."""
    return f"{model}__daily_scoring"


def outcomes_schedule_name(model: str) -> str:
    """The schedule that judges each day's outcomes: `<model>__outcomes`."""
    return f"{model}__outcomes"


def retraining_sensor_name(model: str) -> str:
    """The sensor that requests training runs: `<model>__retraining`."""
    return f"{model}__retraining"


def training_runs_name(model: str) -> str:
    """The dynamic partitions of a model's training runs: `<model>__training_runs`."""
    return f"{model}__training_runs"


def scoring_run_key(model: str, day: dt.date | str) -> str:
    """The run key of the daily scoring schedule's request for a day: `<model>:<YYYY-MM-DD>`."""
    return f"{model}:{day}"


def outcomes_run_key(model: str, day: dt.date | str) -> str:
    """The run key of the outcomes schedule's request for a day: `<model>:outcomes:<YYYY-MM-DD>`."""
    return f"{model}:outcomes:{day}"


# --- run tags and metadata keys -----------------------------------------------------------------------------------

TICK_TAG = "ml_platform/tick"  # the scheduled (or simulated) time of the tick that requested a run, ISO 8601
REASON_TAG = "ml_platform/reason"  # why the run was requested, in words
CHAIN_TAG = "ml_platform/chain"  # the demo's label of the chain of runs a run belongs to
PROCESS_TAG = "ml_platform/process"  # the process executing a run in itself: `host:pid:start`, to detect its death
PARTITION_TAG = "dagster/partition"  # Dagster's tag of a run's partition key, read back by the replay
TRUST_TAG = "trust"  # a source asset's tag (and metadata key): the trust level of its data

TABLE_NAME_METADATA = "dagster/table_name"  # the warehouse table an asset writes, as `schema.name`
ROW_COUNT_METADATA = "dagster/row_count"  # the rows an asset's materialization wrote
COLUMN_SCHEMA_METADATA = "dagster/column_schema"  # a source asset's columns
LATEST_VIEW_METADATA = "latest_view"  # the predictions asset's latest view, as `schema.name`
SHADOW_TABLE_METADATA = "shadow_table"  # the predictions asset's shadow table, as `schema.name`


# --- warehouse schemas, identifiers, tables -----------------------------------------------------------------------

SCHEMAS = ("source", "features", "registry", "predictions", "history", "monitoring", "population")
ENTITY_VIEW = "entity"  # the view of a feature set's rows of interest, which its SQL reads
ENTITY_ROWS_TABLE = "_entity_rows"  # the temporary table a computation's `entity` reads (no spec name starts with _)
BOUNDS_VIEW = "bounds"  # the one-row view of the partition's [partition_start, partition_end) a population reads
PARTITION_START_COLUMN = "partition_start"  # an entity row's partition start: part of an hourly row's key
ENTITY_RESERVED_COLUMNS = ("partition_start", "partition_date")  # written by the platform on every entity row
REGISTRY_TABLES = ("specs", "snapshots", "models", "evaluations", "promotions", "partition_versions",
                   "task_evaluations")
MONITORING_KINDS = ("drift", "outcomes", "served_outcomes")
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # a plain spec name, safe in SQL once double-quoted


def quote(identifier: str) -> str:
    """A double-quoted SQL identifier, after checking it is a plain spec name."""
    if not IDENTIFIER.match(identifier):
        raise ValueError(f"not a valid identifier: {identifier!r}")
    return f'"{identifier}"'


def _schema(schema: str) -> str:
    """The schema, after checking it is one of the warehouse's."""
    if schema not in SCHEMAS:
        raise ValueError(f"unknown warehouse schema {schema!r}")
    return schema


def table(schema: str, name: str) -> str:
    """The qualified, quoted SQL name of a warehouse table or view: `schema."name"`."""
    return f"{_schema(schema)}.{quote(name)}"


def table_label(schema: str, name: str) -> str:
    """The unquoted `schema.name` of a table, as asset metadata and messages show it (checked like `table`)."""
    quote(name)
    return f"{_schema(schema)}.{name}"


MONEY_INPUT_PREFIX = "money_input__"  # a snapshot's copy of an entity column the money value expression reads


def money_input_column(name: str) -> str:
    """The snapshot column holding an entity column that the money value expression reads."""
    return f"{MONEY_INPUT_PREFIX}{name}"


def source_table(name: str) -> str:
    """A source's table: `source."<name>"`."""
    return table("source", name)


def population_table(name: str) -> str:
    """An entity spec's rows, every partition: `population."<name>"`."""
    return table("population", name)


def feature_table(name: str) -> str:
    """A feature set's table: `features."<name>"`."""
    return table("features", name)


def history_view(source: str) -> str:
    """A source's view with every column, outcomes included: `history."<source>"`."""
    return table("history", source)


# The columns a regression or multiclass model's predictions tables hold beside keys, date, inputs and provenance
# (binary tables keep score, flagged and threshold): the predicted number (regression), or the decided class's
# probability (multiclass); the decision taken (a quantity, a yes/no of a top decision, or a class); the decision's
# parameter chosen on validation; and, multiclass, each class's probability.
PREDICTION_COLUMN = "prediction"
DECISION_COLUMN = "decision"
DECISION_PARAMETER_COLUMN = "decision_parameter"
PROBABILITY_PREFIX = "probability__"
# A predictions table of a spec with `scoring: {contributions: true}` holds each row's feature contributions:
# STRUCT(method, scale, expected_value DOUBLE, features MAP(VARCHAR, DOUBLE)) (scoring.contributions)
CONTRIBUTIONS_COLUMN = "contributions"


def probability_column(label_class: str) -> str:
    """The column of one class's predicted probability: `probability__<class>`."""
    return f"{PROBABILITY_PREFIX}{label_class}"


def predictions_table(model: str) -> str:
    """Every production prediction of a model, with provenance: `predictions."<model>"`."""
    return table("predictions", model)


def latest_view_name(model: str) -> str:
    """The bare name of a model's latest-prediction view: `<model>__latest`."""
    return f"{model}__latest"


def latest_view(model: str) -> str:
    """The view holding the latest prediction of each row: `predictions."<model>__latest"`."""
    return table("predictions", latest_view_name(model))


def shadow_table_name(model: str) -> str:
    """The bare name of a model's shadow table: `<model>__shadow`."""
    return f"{model}__shadow"


def shadow_table(model: str) -> str:
    """The table holding the challenger's shadow predictions: `predictions."<model>__shadow"`."""
    return table("predictions", shadow_table_name(model))


def monitoring_table_name(model: str, kind: str) -> str:
    """The bare name of a model's monitoring table, kind 'drift' or 'outcomes': `<model>__<kind>`."""
    if kind not in MONITORING_KINDS:
        raise ValueError(f"unknown monitoring table kind {kind!r}")
    return f"{model}__{kind}"


def monitoring_table(model: str, kind: str) -> str:
    """A model's monitoring table, kind 'drift', 'outcomes' or 'served_outcomes': `monitoring."<model>__<kind>"`."""
    return table("monitoring", monitoring_table_name(model, kind))


def drift_table(model: str) -> str:
    """The drift measured on each scored day: `monitoring."<model>__drift"`."""
    return monitoring_table(model, "drift")


def outcomes_table(model: str) -> str:
    """Each day's outcomes judged against the promise: `monitoring."<model>__outcomes"`."""
    return monitoring_table(model, "outcomes")


SLICE_COLUMN = "slice"  # a snapshot's text column of the older `slice_column`, kept so its snapshots stay the same
SLICE_PREFIX = "slice__"  # of the snapshot columns that carry entity columns a model's money is sliced by


def slice_column(name: str) -> str:
    """The snapshot column holding an entity column a model's money is sliced by: `slice__<name>`."""
    return f"{SLICE_PREFIX}{quote(name)[1:-1]}"


def slice_plot_name(name: str) -> str:
    """The evaluation plot of money by one slice: `money_by_slice__<name>` (`money_by_slice` for an unnamed one)."""
    return f"money_by_slice__{quote(name)[1:-1]}" if name else "money_by_slice"


def dependence_plot_name(feature: str) -> str:
    """The evaluation plot of one feature's contributions against its values: `dependence__<feature>`."""
    return f"dependence__{quote(feature)[1:-1]}"


def registry_table(name: str) -> str:
    """An append-only registry (or the version index), unquoted as the registries have always been: `registry.<name>`."""
    if name not in REGISTRY_TABLES:
        raise ValueError(f"unknown registry table {name!r}")
    return f"registry.{name}"


# --- point in time ------------------------------------------------------------------------------------------------

AVAILABLE_AT_COLUMN = "available_at"  # on every source relation feature SQL reads: when the row became known
PREDICTION_TIME_COLUMN = "prediction_time"  # on the view `entity`: the moment the row's features must be known by
POINT_IN_TIME_CHECK = "point_in_time"  # the blocking proof on each feature asset and on each snapshot


SERVING_FOLDER = "serving"  # in the project's data folder: the append-only logs of served predictions
REQUEST_ID_COLUMN = "request_id"  # a served prediction's request, as the log and the answer name it


def served_log_name(model: str) -> str:
    """The file name of a model's served-predictions log (JSON lines, append-only), in SERVING_FOLDER."""
    if not IDENTIFIER.match(model):
        raise ValueError(f"not a spec name: {model!r}")
    return f"{model}.served.jsonl"


# --- the cluster configuration's Delta Lake tables (docs/scale-out.md) ----------------------------------------------

# where the warehouse's Delta tables live (feature tables, sources, populations): unset = the embedded warehouse file
FEATURE_TABLES_VARIABLE = "ML_PLATFORM_FEATURE_TABLES"
OBJECT_STORE_ENDPOINT_VARIABLE = "ML_PLATFORM_S3_ENDPOINT"  # an S3-compatible store's endpoint (unset: AWS's)
ARTIFACTS_VARIABLE = "ML_PLATFORM_ARTIFACTS"  # where artifacts are shared: unset = only the project's local folder
REGISTRY_VARIABLE = "ML_PLATFORM_REGISTRY_URL"  # the registries' PostgreSQL database: unset = the warehouse file
# a run config file (YAML) whose executor the chain's runs (`ml-platform demo`) use, e.g. deploy/cluster/run_config.yaml:
# unset = each run executed in the chain's own process
RUN_CONFIG_VARIABLE = "ML_PLATFORM_RUN_CONFIG"


def delta_table_path(folder: str, name: str) -> str:
    """A Delta table of the warehouse, relative to the tables' root: `<folder>/<name>` (storage/delta_tables.py)."""
    quote(name)
    return f"{folder}/{name}"


def delta_index_path(folder: str, name: str) -> str:
    """The Delta version index of the table `<folder>/<name>`, relative to the same root: `versions/<folder>/<name>`."""
    return f"versions/{delta_table_path(folder, name)}"


def delta_feature_path(name: str) -> str:
    """A feature set's Delta table: `features/<name>`."""
    return delta_table_path("features", name)


def delta_versions_path(name: str) -> str:
    """The version index of a feature set's partitions, a Delta table beside it: `versions/features/<name>`."""
    return delta_index_path("features", name)


def delta_source_path(name: str) -> str:
    """A source's Delta table (daily or reference): `sources/<name>`."""
    return delta_table_path("sources", name)


def delta_source_versions_path(name: str) -> str:
    """The Delta version index of a source's partitions (one, WHOLE, for a reference one): `versions/sources/<name>`."""
    return delta_index_path("sources", name)


def delta_population_path(name: str) -> str:
    """An entity spec's population as a Delta table: `populations/<name>`."""
    return delta_table_path("populations", name)


def delta_population_versions_path(name: str) -> str:
    """The Delta version index of a population's partitions: `versions/populations/<name>`."""
    return delta_index_path("populations", name)


def monitoring_asset(name: str) -> str:
    """The version-index asset of a monitoring table `<model>__<kind>`: `<kind>/<model>` (see stage_asset)."""
    model, _, kind = name.rpartition("__")
    if not model or kind not in MONITORING_KINDS:
        raise ValueError(f"not a monitoring table's name: {name!r}")
    return stage_asset(kind, model)


# --- the cluster configuration's distributed training (docs/scale-out.md) -------------------------------------------

DASK_ADDRESS_VARIABLE = "ML_PLATFORM_DASK_ADDRESS"  # the dask scheduler's address, tcp://HOST:PORT
# training windows of at least this many rows train on that scheduler's workers (lightgbm.dask); unset = never
DISTRIBUTED_TRAINING_ROWS_VARIABLE = "ML_PLATFORM_DISTRIBUTED_TRAINING_ROWS"
