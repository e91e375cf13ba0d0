"""Checks across specs: names that must resolve, SQL that must bind, windows that must fit the data."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

import duckdb

from ml_platform.names import PARTITION_START_COLUMN, RESERVED_KEY_PREFIXES
from ml_platform.specs.availability_checks import availability_errors
from ml_platform.specs.catalog import NEEDS_OPT_IN, Catalog, SourceDependency
from ml_platform.specs.entity_checks import check_entity, population_source
from ml_platform.specs.errors import SpecError, did_you_mean, unknown_name
from ml_platform.specs.label_checks import check_label, label_sources
from ml_platform.specs.models import DailyPartitioning, FeatureSetSpec, FileLocation, ModelSpec, SourceSpec
from ml_platform.specs.partition_checks import check_daily_partitionings
from ml_platform.specs.sql_checks import RAW, SqlChecker, is_numeric, spec_sql_connection
from ml_platform.specs.sql_reach import (feature_set_tables, find_escape, model_expressions, model_tables,
                                         refuse_escapes)
from ml_platform.specs.tasks import DECISIONS, label_type_problem, task_problems, value_columns

CATEGORY_TYPES = {"VARCHAR", "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT"}


def package_data_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def check_catalog(catalog: Catalog, broken: set[tuple[str, str]] = frozenset()) -> list[SpecError]:
    """Every cross-spec error in the catalog; names in `broken` failed to parse and are not reported again."""
    errors: list[SpecError] = []
    connection = spec_sql_connection()  # shared by the SQL checks, which reset it
    try:
        for source in catalog.sources.values():
            errors += _check_source(catalog, source, connection)
        errors += _check_feature_names(catalog)
        errors += check_daily_partitionings(catalog)
        for feature_set in catalog.feature_sets.values():
            errors += _check_feature_set(catalog, feature_set, broken, connection)
        for entity in catalog.entities.values():
            errors += check_entity(catalog, entity, broken, connection)
        for model in catalog.models.values():
            if model.name in RESERVED_KEY_PREFIXES:  # its stage keys would be `source/<stage>`, a source's key shape
                errors.append(_error(catalog, model, "name", f"given {model.name!r}: "
                                     f"{', '.join(map(repr, RESERVED_KEY_PREFIXES))} name the sources', feature "
                                     "sets' and entities' asset keys; choose another model name"))
            errors += _check_model(catalog, model, broken, connection)
    finally:
        connection.close()
    return errors


def check_unparsed_names(catalog: Catalog, raw: dict, parse_errors: Sequence[SpecError],
                         broken: set[tuple[str, str]]) -> list[SpecError]:
    """The unknown names in a model or feature set that failed to parse, so that one run shows every typo."""
    kind, file, name = parse_errors[0].kind, parse_errors[0].file, parse_errors[0].name
    failed = {error.field for error in parse_errors}
    references = [("entity", "source", raw.get("entity"))]
    list_field, what = ("features", "feature") if kind == "model" else ("reads", "source")
    if isinstance(raw.get(list_field), list) and list_field not in failed:
        references += [(f"{list_field}[{index}]", what, given) for index, given in enumerate(raw[list_field])]
    errors = []
    for field, what, given in references:
        allowed = catalog.feature_index() if what == "feature" else catalog.sources
        if field == "entity":  # a model or feature set names a daily source or an entity spec
            allowed = {**catalog.sources, **catalog.entities}
        if isinstance(given, str) and field not in failed and given not in allowed:
            if message := _unknown(what, given, allowed, broken):
                errors.append(SpecError(file, field, message, kind, name))
    return errors


def _error(catalog: Catalog, spec, field: str, message: str) -> SpecError:
    return SpecError(catalog.file_of(spec.kind, spec.name), field, message, spec.kind, spec.name)


def _unknown(what: str, given: str, allowed, broken: set[tuple[str, str]]) -> str | None:
    """The message for a source or feature name that resolves to nothing; None when its spec failed to load."""
    if (what, given) in broken:
        return None  # the errors of the file that declares it already say why
    declared_by = "feature_set" if what == "feature" else what
    failed = any(kind in (declared_by, "file") for kind, _ in broken)
    note = " (a spec file failed to load: see its errors)" if failed else ""
    return unknown_name(what, given, allowed) + note


def _check_health_columns(catalog: Catalog, source: SourceSpec) -> list[SpecError]:
    """Columns named by the distribution and null-surge checks must be declared (and numeric, for distribution)."""
    errors = []
    declared = {name: column.type for name, column in source.columns.items()}
    distribution = source.checks.distribution
    named = [(f"checks.distribution.exclude[{index}]", name) for index, name in enumerate(distribution.exclude)]
    named += [(f"checks.distribution.thresholds.{name}", name) for name in distribution.thresholds]
    for field, name in named:
        if name not in declared:
            errors.append(_error(catalog, source, field, unknown_name("column", name, declared)))
        elif declared[name] not in ("INTEGER", "BIGINT", "DOUBLE"):
            errors.append(_error(catalog, source, field, f"the distribution check judges numeric columns only; "
                                                         f"'{name}' is {declared[name]}"))
    for index, name in enumerate(source.checks.null_surge.exclude):
        if name not in declared:
            errors.append(_error(catalog, source, f"checks.null_surge.exclude[{index}]",
                                 unknown_name("column", name, declared)))
    return errors


def _check_source(catalog: Catalog, source: SourceSpec, connection: duckdb.DuckDBPyConnection) -> list[SpecError]:
    errors = []
    columns = source.all_columns()
    for index, key in enumerate(source.keys):
        if key not in columns:
            errors.append(_error(catalog, source, f"keys[{index}]", unknown_name("column", key, columns)))
    for name in source.derived_columns:
        if name in source.columns:
            errors.append(_error(catalog, source, f"derived_columns.{name}", "clashes with a declared column"))
    if "partition_date" in source.columns or "partition_date" in source.derived_columns:
        errors.append(_error(catalog, source, "columns", "'partition_date' is reserved for the platform"))
    errors += _check_location(catalog, source)
    for index, name in enumerate(source.checks.not_null):
        if name not in columns:
            errors.append(_error(catalog, source, f"checks.not_null[{index}]", unknown_name("column", name, columns)))
    for name in source.checks.ranges:
        if name not in columns:
            errors.append(_error(catalog, source, f"checks.ranges.{name}", unknown_name("column", name, columns)))
        elif columns[name] not in ("INTEGER", "BIGINT", "DOUBLE"):
            errors.append(_error(catalog, source, f"checks.ranges.{name}",
                                 f"a range needs a numeric column; '{name}' is {columns[name]}"))
    errors += _check_health_columns(catalog, source)
    checker = SqlChecker({source.name: source}, connection=connection)
    try:
        for name, derived in source.derived_columns.items():
            kind, problem = None, refuse_escapes(derived.expression, (), True, connection)
            if not problem:
                kind, problem = checker.expression_type(derived.expression, source.name, schema=RAW)
            if problem:
                errors.append(_error(catalog, source, f"derived_columns.{name}.expression", problem))
        if isinstance(source.partitioning, DailyPartitioning):
            kind, problem = None, refuse_escapes(source.partitioning.date, (), True, connection)
            if not problem:
                kind, problem = checker.expression_type(source.partitioning.date, source.name, schema=RAW)
            if problem:
                errors.append(_error(catalog, source, "partitioning.date", problem))
            elif kind not in ("DATE", "TIMESTAMP"):
                errors.append(_error(catalog, source, "partitioning.date", f"must give a DATE, gives {kind}"))
        errors += availability_errors(source, catalog.file_of("source", source.name), checker)
    finally:
        checker.close()
    return errors


def _check_location(catalog: Catalog, source: SourceSpec) -> list[SpecError]:
    location = source.location
    if isinstance(location, FileLocation):
        path = Path(location.path)
        inside = (catalog.project_dir / path).resolve()
        if path.is_absolute() or not inside.is_relative_to(catalog.project_dir):
            return [_error(catalog, source, "location.path",
                           f"given {location.path!r}: the path must be relative and stay inside the project folder")]
        return []
    folder = package_data_dir(location.package)
    if folder is None:
        return [_error(catalog, source, "location.package", f"package {location.package!r} is not installed")]
    target = (folder / location.path).resolve()
    if not target.is_relative_to(folder.resolve()):
        return [_error(catalog, source, "location.path", f"given {location.path!r}: must stay inside the package")]
    if not target.is_file():
        return [_error(catalog, source, "location.path",
                       f"package {location.package!r} has no file {location.path!r}")]
    return []


def _check_feature_names(catalog: Catalog) -> list[SpecError]:
    owners: dict[str, str] = {}
    errors = []
    for feature_set in sorted(catalog.feature_sets.values(), key=lambda fs: catalog.file_of(fs.kind, fs.name)):
        for feature in feature_set.features:
            if feature in owners:
                first = owners[feature]
                errors.append(_error(catalog, feature_set, f"features.{feature}",
                                     f"feature '{feature}' is already declared by feature set '{first}' "
                                     f"({catalog.file_of('feature_set', first)})"))
            else:
                owners[feature] = feature_set.name
    return errors


def _entity(catalog: Catalog, spec, broken: set[tuple[str, str]],
            connection: duckdb.DuckDBPyConnection) -> tuple[SourceSpec | None, list[SpecError]]:
    """The daily source a feature set or model describes (an entity spec's population described as one), and the
    errors in its `entity` field."""
    if spec.entity in catalog.entities:  # its own errors are reported with it; nothing to check against then
        entity = catalog.entities[spec.entity]
        return population_source(catalog, entity, connection), []
    if spec.entity not in catalog.sources:
        if ("entity", spec.entity) in broken:
            return None, []
        message = _unknown("source", spec.entity, {**catalog.sources, **catalog.entities}, broken)
        return None, [_error(catalog, spec, "entity", message)] if message else []
    entity = catalog.sources[spec.entity]
    if not entity.is_daily:
        return entity, [_error(catalog, spec, "entity", f"source '{entity.name}' must have daily partitioning")]
    return entity, []


def _check_feature_set(catalog: Catalog, feature_set: FeatureSetSpec, broken: set[tuple[str, str]],
                       connection: duckdb.DuckDBPyConnection) -> list[SpecError]:
    entity, errors = _entity(catalog, feature_set, broken, connection)
    if entity is None:
        return errors
    readable = {feature_set.entity: entity}
    for index, name in enumerate(feature_set.reads):
        if name in catalog.sources:
            readable[name] = catalog.sources[name]
        elif message := _unknown("source", name, catalog.sources, broken):
            errors.append(_error(catalog, feature_set, f"reads[{index}]", message))
    if len(readable) != len(set(feature_set.reads) | {feature_set.entity}):
        return errors
    for clash in sorted(set(feature_set.features) & set(entity.all_columns())):
        errors.append(_error(catalog, feature_set, f"features.{clash}",
                             f"feature name clashes with a column of source '{entity.name}'"))
    used, problems = _used_feature_tables(catalog, feature_set, entity)
    functions, function_problems = _registered_functions(catalog, feature_set)
    errors += problems + function_problems
    if problems or function_problems:
        return errors
    if escape := _feature_set_escape(catalog, feature_set, connection):
        return errors + [_error(catalog, feature_set, "sql", escape)]
    checker = SqlChecker(readable, unreadable=catalog.sources, connection=connection, feature_tables=used,
                         before_event_only=True)
    try:
        checker.register(functions)
        checker.with_entity(entity.name)
        columns, problem = checker.describe(feature_set.sql)
    finally:
        checker.close()
    if problem:
        return errors + [_error(catalog, feature_set, "sql", _after_event_hint(problem, readable))]
    returned = dict(columns)
    for key in entity.keys:
        if key not in returned:
            hourly = (f" (an hourly entity's row is a key in one hour: return entity.{key} beside its keys)"
                      if key == PARTITION_START_COLUMN else "")
            errors.append(_error(catalog, feature_set, "sql", f"must return the entity key column '{key}'{hourly}"))
    for name, feature in feature_set.features.items():
        if name not in returned:
            errors.append(_error(catalog, feature_set, f"features.{name}",
                                 f"declared but the SQL does not return it (returns: {', '.join(returned)})"))
            continue
        allowed = is_numeric(returned[name]) if feature.type == "number" else returned[name] in CATEGORY_TYPES
        if not allowed:
            errors.append(_error(catalog, feature_set, f"features.{name}.type",
                                 f"declared {feature.type} but the SQL returns {returned[name]}"))
    for name in returned:
        if name not in feature_set.features and name not in entity.keys:
            errors.append(_error(catalog, feature_set, "sql",
                                 f"returns column '{name}', which is neither an entity key nor a declared feature"))
    return errors


def _feature_set_escape(catalog: Catalog, feature_set: FeatureSetSpec,
                        connection: duckdb.DuckDBPyConnection) -> str | None:
    """Why the feature set's SQL reaches beyond what it declares (an undeclared source or feature set, a file, a
    table function, the environment), or None."""
    escape = find_escape(feature_set.sql, feature_set_tables(feature_set), connection=connection)
    if escape is None:
        return None
    if escape.kind == "table":
        name = escape.name.lower().removeprefix("source.").removeprefix("history.")
        if name in catalog.sources:
            return f"reads source '{name}', which is not listed in 'reads'"
        name = escape.name.lower().removeprefix("features.")
        if name in catalog.feature_sets:
            return f"reads feature set '{name}', which is not listed in 'uses'"
    return escape.message


def _after_event_hint(problem: str, readable: dict[str, SourceSpec]) -> str:
    """Say so when SQL failed because it read a column known only after the event from the rows it describes."""
    for source in readable.values():
        for column in source.after_event_columns():
            if problem.startswith(f"unknown column '{column}'"):
                return (f"reads '{column}', which is known only after the event, from rows whose features it "
                        f"computes; read outcomes of earlier events from history.{source.name}, in a window that "
                        f"ends before the prediction time")
    return problem


def _used_feature_tables(catalog: Catalog, feature_set: FeatureSetSpec,
                         entity: SourceSpec) -> tuple[dict[str, dict[str, str]], list[SpecError]]:
    """{feature set: {column: type}} of the feature sets this one uses, or the errors in its `uses`."""
    tables, errors = {}, []
    for index, name in enumerate(feature_set.uses):
        used = catalog.feature_sets.get(name)
        if used is None:
            errors.append(_error(catalog, feature_set, f"uses[{index}]",
                                 unknown_name("feature set", name, catalog.feature_sets)))
        elif used.entity != feature_set.entity:
            errors.append(_error(catalog, feature_set, f"uses[{index}]",
                                 f"feature set '{name}' describes '{used.entity}' rows, not '{feature_set.entity}'"))
        elif name in catalog.sources:
            errors.append(_error(catalog, feature_set, f"uses[{index}]",
                                 f"'{name}' names both a source and a feature set; rename the feature set"))
        else:
            columns = {key: entity.all_columns()[key] for key in entity.keys}
            columns.update({feature: "DOUBLE" if spec.type == "number" else "VARCHAR"
                            for feature, spec in used.features.items()})
            tables[name] = {**columns, "partition_date": "DATE"}
    cycle = _cycle_through(catalog, feature_set.name)
    if cycle:
        errors.append(_error(catalog, feature_set, "uses",
                             f"feature sets use each other in a cycle: {' -> '.join(cycle)}"))
    return tables, errors


def _cycle_through(catalog: Catalog, start: str) -> list[str] | None:
    """A path of `uses` from start back to itself, if there is one."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        name, path = stack.pop()
        for used in catalog.feature_sets[name].uses if name in catalog.feature_sets else ():
            if used == start:
                return path + [start]
            if used not in seen:
                seen.add(used)
                stack.append((used, path + [used]))
    return None


def _registered_functions(catalog: Catalog, feature_set: FeatureSetSpec) -> tuple[list, list[SpecError]]:
    """The registered functions the feature set declares, or the errors naming unknown ones."""
    found, errors = [], []
    for index, name in enumerate(feature_set.functions):
        if name in catalog.functions:
            found.append(catalog.functions[name])
        else:
            errors.append(_error(catalog, feature_set, f"functions[{index}]",
                                 unknown_name("registered function", name, catalog.functions)))
    return found, errors


def _check_model(catalog: Catalog, model: ModelSpec, broken: set[tuple[str, str]],
                 connection: duckdb.DuckDBPyConnection) -> list[SpecError]:
    entity, errors = _entity(catalog, model, broken, connection)
    if entity is None or errors:
        return errors
    index = catalog.feature_index()
    predict_at = model.cadence.predict_at
    hourly = catalog.entity_rows(model.entity).row_grain == "hourly"
    for position, feature in enumerate(model.features):
        if feature not in index:
            if message := _unknown("feature", feature, index, broken):
                errors.append(_error(catalog, model, f"features[{position}]", message))
            continue
        feature_set = catalog.feature_sets[index[feature]]
        if feature_set.entity != model.entity:
            errors.append(_error(catalog, model, f"features[{position}]",
                                 f"feature '{feature}' describes '{feature_set.entity}' rows, not '{model.entity}'"))
        known_by = feature_set.known_by
        # compared for a row whose time is its day's start (every row of a daily source; the proof checks each row),
        # for an hourly entity for its day's last hour, as a day's hours are scored together
        last_hour = 23 * 60 if hourly and not known_by.at_clock_time else 0
        if known_by.least_minutes_before_day_start() - last_hour < predict_at.least_minutes_before_day_start():
            known = (f"{known_by.days_before} day(s) before at {known_by.time}" if known_by.at_clock_time
                     else known_by.describe())
            row = " (for an hour's row: a day's 24 hours are scored together, so its last hour counts)" \
                if last_hour else ""
            errors.append(_error(
                catalog, model, f"features[{position}]",
                f"feature '{feature}' of feature set '{feature_set.name}' is known only {known}, after the model "
                f"predicts ({predict_at.days_before} day(s) before at {predict_at.time}; field "
                f"cadence.predict_at){row}"))
    errors += _check_model_sql(catalog, model, entity, connection)
    errors += _check_windows(catalog, model, entity.partitioning)
    resolved = all(feature in index for feature in model.features) and not any(
        kind in ("feature_set", "file") for kind, _ in broken)
    errors += _check_data_dependencies(catalog, model, stale_too=resolved)
    errors += [_error(catalog, model, field, message) for field, message in task_problems(model)]
    if model.slice_column and model.slice_column not in entity.all_columns():
        errors.append(_error(catalog, model, "slice_column",
                             unknown_name("column", model.slice_column, entity.all_columns())))
    sliceable = [*entity.all_columns(), *model.features]
    errors += [_error(catalog, model, f"slices[{position}]",
                      unknown_name("slice", name, dict.fromkeys(sliceable)))
               for position, name in enumerate(model.slices) if name not in sliceable]
    return errors


def _check_model_sql(catalog: Catalog, model: ModelSpec, entity: SourceSpec,
                     connection: duckdb.DuckDBPyConnection) -> list[SpecError]:
    errors = []
    escapes = {field: refuse_escapes(expression, model_tables(model, field), True, connection)
               for field, expression in model_expressions(model)}
    if any(escapes.values()):  # checked before any of them is bound, as binding can already read a file
        return [_error(catalog, model, field, problem) for field, problem in escapes.items() if problem]
    checker = SqlChecker({**label_sources(catalog, model), entity.name: entity}, connection=connection)
    after_event = set(entity.after_event_columns())
    before_event = [name for name in entity.all_columns() if name not in after_event]
    try:
        problems, aggregates = check_label(catalog, model, entity, checker)
        if problems:
            errors += [_error(catalog, model, field, message) for field, message in problems]
            return errors
        kind, problem = checker.expression_type(model.label.expression, entity.name, extra_columns=aggregates)
        if problem := problem or label_type_problem(model.label.task, kind):
            errors.append(_error(catalog, model, "label.expression", problem))
            return errors
        if model.filter is not None:
            kind, problem = checker.expression_type(model.filter, entity.name, columns=before_event)
            if problem and problem.startswith("unknown column '") and problem.split("'")[1] in after_event:
                problem = (f"reads '{problem.split(chr(39))[1]}', which is known only after the event: the filter "
                           f"also selects the rows to score, before their outcome exists")
            if problem or kind != "BOOLEAN":
                errors.append(_error(catalog, model, "filter", problem or f"must be true/false, gives {kind}"))
        if model.money.value is not None:
            if model.money.decision.kind in DECISIONS[model.label.task]:
                kind, problem = checker.expression_type(model.money.value, entity.name,
                                                        extra_columns={**aggregates, **value_columns(model)})
                if problem or not is_numeric(kind):
                    errors.append(_error(catalog, model, "money.value", problem or f"must give a number, gives {kind}"))
            return errors
        with_label = {**aggregates, "label": model.label.expression}
        for outcome, expression in model.money.outcomes.model_dump().items():
            kind, problem = checker.expression_type(expression, entity.name, extra_columns=with_label)
            if problem or not is_numeric(kind):
                errors.append(_error(catalog, model, f"money.outcomes.{outcome}",
                                     problem or f"must give a number, gives {kind}"))
    finally:
        checker.close()
    return errors


def _what(catalog: Catalog, name: str) -> str:
    """An `entity:` name in words: "source 'flights'" or "entity 'busy_routes'"."""
    return f"entity '{name}'" if name in catalog.entities else f"source '{name}'"


def _check_windows(catalog: Catalog, model: ModelSpec, partitioning: DailyPartitioning) -> list[SpecError]:
    errors = []
    for name in ("train", "validation", "test"):
        window = getattr(model.split, name)
        if window.start < partitioning.start:
            errors.append(_error(catalog, model, f"split.{name}.start",
                                 f"{window.start} is before the first day of {_what(catalog, model.entity)} "
                                 f"({partitioning.start})"))
        if partitioning.end is not None and window.end > partitioning.end:
            errors.append(_error(catalog, model, f"split.{name}.end",
                                 f"{window.end} is after the last day of {_what(catalog, model.entity)} "
                                 f"({partitioning.end})"))
    return errors


def _pulled_in_by(dependency: SourceDependency) -> str:
    """What makes a model read a source, in words."""
    parts = []
    for via in dependency.via:
        *users, reader = via.split(" > ")
        named = {"entity": "its entity", "label": "its label's aggregates"}
        parts.append(named.get(via) or f"feature set '{reader}'" + "".join(
            f", used by '{user}'" for user in reversed(users)))
    features = f" (the model's features from {'it' if len(parts) == 1 else 'them'}: " \
               f"{', '.join(dependency.features)})" if dependency.features else ""
    return "; ".join(parts) + features


def _check_data_dependencies(catalog: Catalog, model: ModelSpec, stale_too: bool) -> list[SpecError]:
    """Every non-internal source the model reads must be accepted in its spec, and only those (stale opt-ins rot);
    stale ones are not judged while a feature of the model does not resolve."""
    errors = []
    dependencies = {dependency.source: dependency for dependency in catalog.source_dependencies(model)}
    needing = sorted(name for name, dependency in dependencies.items() if dependency.needs_opt_in)
    accepted = model.data_dependencies.accept
    for name in needing:
        dependency = dependencies[name]
        if name not in accepted:
            errors.append(_error(
                catalog, model, "data_dependencies.accept",
                f"depends on source '{name}', whose trust is {dependency.trust}, through {_pulled_in_by(dependency)}, "
                f"without an opt-in; a model reads external_vendor or model_output data only when its spec accepts "
                f"it: add under data_dependencies.accept '{name}: {{trust: {dependency.trust}, reason: <why this "
                f"data is acceptable and what guards the model>, reviewed_by: <e-mail or team:name>, reviewed_on: "
                f"<YYYY-MM-DD>}}', or drop the features that read it"))
        elif accepted[name].trust != dependency.trust:
            errors.append(_error(
                catalog, model, f"data_dependencies.accept.{name}.trust",
                f"accepted source '{name}' as {accepted[name].trust}, but its trust is now {dependency.trust}: "
                f"review the opt-in again, then set trust: {dependency.trust}, reason, reviewed_by and reviewed_on"))
    for name in sorted(set(accepted) - set(needing)):
        field = f"data_dependencies.accept.{name}"
        if name in dependencies:
            message = (f"source '{name}' is {dependencies[name].trust}: only {' and '.join(NEEDS_OPT_IN)} sources "
                       f"need an opt-in; remove it")
        elif stale_too:
            listing = ", ".join(needing) or "none"
            message = (f"the model does not depend on source '{name}'{did_you_mean(name, needing)} (sources it "
                       f"depends on that need an opt-in: {listing}); remove the stale opt-in")
        else:
            continue
        errors.append(_error(catalog, model, field, message))
    return errors
