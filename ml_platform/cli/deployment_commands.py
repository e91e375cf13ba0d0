"""`ml-platform history` and `ml-platform rollback`: the promotion log, read and appended to."""

from __future__ import annotations

import argparse
import getpass
import sys

from ml_platform.cli.common import BAD_INPUT, BLOCKED, ERROR, project_of


def _fail(message: str, code: int = BAD_INPUT) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _log_lines(log) -> list[str]:
    lines = []
    for entry in log:
        row = entry.record
        state = "LIVE (champion)" if entry.live_until is None else f"until {_time(entry.live_until)}"
        lines.append(f"  #{row.promotion_id:<3} {_time(row.promoted_at)}  {row.model_version}  "
                     f"run {row.training_run}  {state}")
        lines.append(f"        reason: {row.reason}")
    return lines


def command_history(arguments: argparse.Namespace) -> int:
    """Print which version was live at a time, and the whole promotion log."""
    from ml_platform.deployment.history import DeploymentError, live_at, parse_time, require_model
    from ml_platform.storage.warehouse import open_warehouse

    project = project_of(arguments)
    if not project.storage.warehouse.is_file():
        return _fail(f"no warehouse at {project.storage.warehouse}: nothing has been promoted in this project yet")
    try:
        when = parse_time(arguments.at) if arguments.at else None
        with open_warehouse(project.storage.warehouse) as connection:
            log = require_model(connection, None, arguments.model)
    except DeploymentError as error:
        return _fail(str(error))
    if when is not None:
        live = live_at(log, when)
        if live is None:
            first = f" (first promotion at {_time(log[0].record.promoted_at)} UTC)" if log else ""
            print(f"live at {_time(when)} UTC: nothing; no version of '{arguments.model}' was deployed yet{first}")
        else:
            print(f"live at {_time(when)} UTC: {live.model_version} (promotion #{live.promotion_id} at "
                  f"{_time(live.promoted_at)} UTC, training run {live.training_run})")
    print(f"{arguments.model}: {len(log)} promotion(s), times in UTC, newest last")
    print("\n".join(_log_lines(log)) if log else "  (none)")
    return 0


def _record_in_dagster(project, model: str, outcome) -> str | None:
    """Mirror the rollback as a materialization of the deployment asset, so that the UI shows it; error or None."""
    try:
        import dagster as dg

        from ml_platform.chain.instance import open_instance
        from ml_platform.names import stage_key

        with open_instance(project) as instance:
            instance.report_runless_asset_event(dg.AssetMaterialization(
                asset_key=stage_key("deployment", model), partition=outcome.record.training_run,
                description=outcome.record.reason,
                metadata={"champion": outcome.record.model_version, "promotion": f"#{outcome.record.promotion_id}",
                          "promoted_at": str(outcome.record.promoted_at), "outcome": "rolled back",
                          "previous_champion": outcome.previous}))
    except Exception as error:  # the promotion log is the record; the UI event only mirrors it
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None


def command_rollback(arguments: argparse.Namespace) -> int:
    """Promote an earlier, previously promoted version again through the promotion log."""
    from ml_platform.deployment.history import DeploymentError, rollback
    from ml_platform.deployment.promotion import GateRefusedError
    from ml_platform.storage.resources import build_resources
    from ml_platform.specs.errors import SpecErrors
    from ml_platform.features.library import load_catalog
    from ml_platform.storage.warehouse import open_warehouse

    project = project_of(arguments)
    if not project.storage.warehouse.is_file():
        return _fail(f"no warehouse at {project.storage.warehouse}: nothing has been promoted in this project yet")
    try:
        catalog = load_catalog(project.specs_dir, project.root)
    except SpecErrors as errors:
        print(errors, file=sys.stderr)
        return ERROR
    reason = arguments.reason or f"requested by {getpass.getuser()}"
    artifacts = build_resources(project.storage)["artifacts"]
    try:
        with open_warehouse(project.storage.warehouse) as connection:
            outcome = rollback(connection, artifacts, catalog, arguments.model, arguments.to, reason)
    except DeploymentError as error:
        return _fail(str(error))
    except GateRefusedError as error:
        return _fail(str(error), BLOCKED)
    print(f"{arguments.model}: rolled back from {outcome.previous} to {outcome.record.model_version} "
          f"(promotion #{outcome.record.promotion_id} at {_time(outcome.record.promoted_at)} UTC)")
    print(f"  reason: {outcome.record.reason}")
    problem = _record_in_dagster(project, arguments.model, outcome)
    if problem:
        print(f"warning: promoted, but the Dagster instance did not record it ({problem})", file=sys.stderr)
    return 0


def register(commands) -> None:
    """Add the deployment subcommands."""
    history = commands.add_parser("history", help="the promotion log of a model, and which version was live when")
    history.add_argument("model", help="model name")
    history.add_argument("--at", help="a time (ISO 8601; UTC unless it carries an offset): print the version live then")
    history.set_defaults(handler=command_history)

    back = commands.add_parser("rollback", help="promote an earlier, previously promoted version again")
    back.add_argument("model", help="model name")
    back.add_argument("--to", metavar="VERSION",
                      help="version to go back to (default: the version promoted before the current champion)")
    back.add_argument("--reason", help="why, recorded in the promotion log (default: who asked)")
    back.set_defaults(handler=command_rollback)
