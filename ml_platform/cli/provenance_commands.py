"""`ml-platform runs`, `reproduce`, `explain`, `diff` and `compare`: what made a model or a prediction, and can it be made again.

Exit codes: 0 when all is well (for reproduce: identical; for diff: no differences), 1 when reproduce finds a
different artifact, a stored artifact fails its integrity check (reproduce, explain), or diff finds differences,
2 when the input names nothing known.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ml_platform.cli.common import BAD_INPUT, date_argument, project_of


def _positive_count(text: str) -> int:
    """A whole number of at least 1 (argparse's type for counts)."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1 (given '{text}')")
    return number


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _guarded(command):
    """Run a command; known errors become one clear line on standard error instead of a traceback."""

    def run(arguments: argparse.Namespace) -> int:
        from ml_platform.provenance.records import ProvenanceInputError, RecordedSpecError
        from ml_platform.storage.artifacts import TamperedArtifactError

        try:
            return command(arguments)
        except ProvenanceInputError as error:
            return _fail(str(error), BAD_INPUT)
        except (RecordedSpecError, TamperedArtifactError) as error:
            return _fail(str(error), 1)

    run.__doc__ = command.__doc__
    return run


@_guarded
def command_runs(arguments: argparse.Namespace) -> int:
    """List a model's training runs with their snapshot, model, money, gate and champion status."""
    from ml_platform.provenance.records import open_registry
    from ml_platform.provenance.runs import runs_text, training_runs

    with open_registry(project_of(arguments).storage.warehouse) as connection:
        runs = training_runs(connection, arguments.model)
    print(runs_text(arguments.model, runs))
    return 0


@_guarded
def command_reproduce(arguments: argparse.Namespace) -> int:
    """Retrain a model version from its recorded snapshot and spec, and compare the artifact's SHA-256."""
    from ml_platform.provenance.reproduce import reproduce, reproduction_text

    from ml_platform.progress import Progress

    output = Path(arguments.output) if arguments.output else None
    # progress goes to standard error, so that standard output holds the report alone
    progress = Progress(lambda line: print(f"  ... {line}", file=sys.stderr, flush=True))
    result = reproduce(project_of(arguments), arguments.model_version, output, progress)
    print(reproduction_text(result))
    return 0 if result.verified else 1


@_guarded
def command_explain(arguments: argparse.Namespace) -> int:
    """Explain one production prediction: what made it, from which inputs, and which promotion made it live."""
    from ml_platform.provenance.explain import explain, explained_money, explanation_text
    from ml_platform.provenance.records import open_registry

    from ml_platform.storage.artifacts import ArtifactStore

    from ml_platform.provenance.served import explain_served, served_explanation_text

    project = project_of(arguments)
    served = arguments.served or arguments.request_id is not None
    if arguments.key is None and not served:
        return _fail("give KEY (or --request-id for a served prediction)", BAD_INPUT)
    with open_registry(project.storage.warehouse) as connection:
        store = ArtifactStore(root=str(project.storage.artifacts))
        if served:
            result = explain_served(connection, project.data_dir, arguments.model, arguments.key,
                                    arguments.request_id, store)
            money = None
        else:
            result = explain(connection, arguments.model, arguments.key, arguments.date, store)
            money = explained_money(connection, project, result, arguments.top)
    if served:
        print(served_explanation_text(result, full_spec=arguments.full_spec, top=arguments.top))
    else:
        print(explanation_text(result, full_spec=arguments.full_spec, top=arguments.top, money=money))
    if result.artifact_problem is not None:
        return _fail(f"the model that made this prediction, {result.trained.model_version}, fails its integrity "
                     f"check: {result.artifact_problem}", 1)
    return 0


@_guarded
def command_diff(arguments: argparse.Namespace) -> int:
    """Show a unified diff of two specs (files, model versions or training runs) with their feature sets and sources."""
    from ml_platform.provenance.spec_diff import diff_text, side

    project = project_of(arguments)
    differ, text = diff_text(side(project, arguments.a), side(project, arguments.b))
    print(text)
    return 1 if differ else 0



@_guarded
def command_compare(arguments: argparse.Namespace) -> int:
    """Set two training runs or model versions side by side: money, metrics, decision, slices, importance, spec."""
    from ml_platform.provenance.compare import compare, comparison_text

    print(comparison_text(compare(project_of(arguments), arguments.a, arguments.b)))
    return 0


def register(commands) -> None:
    """Add the provenance subcommands: runs, reproduce, explain, diff."""
    runs = commands.add_parser("runs", help="list a model's training runs: snapshot, version, money, gate, champion")
    runs.add_argument("model", help="the name of a model spec")
    runs.set_defaults(handler=command_runs)

    reproduce = commands.add_parser(
        "reproduce", help="retrain a model version from its recorded snapshot and spec; compare artifact hashes",
        description="Retrain MODEL_VERSION from its training run's snapshot (hash verified) and the spec recorded "
                    "for that run, through the platform's training code, into a temporary file. Nothing is written "
                    "to the registry or the artifact store. Exit code 0: identical artifact and the stored one intact; 1: "
                    "different, or the stored artifact fails its check (TAMPERED).")
    reproduce.add_argument("model_version", metavar="MODEL_VERSION",
                           help="a model version: the model's name and its artifact hash, e.g. <model>-3f2a1b0c9d8e")
    reproduce.add_argument("--output", help="also keep the reproduced artifact in this file (outside the store)")
    reproduce.set_defaults(handler=command_reproduce)

    explain = commands.add_parser(
        "explain", help="explain one production prediction: score, model, spec, snapshot, code, inputs, promotion")
    explain.add_argument("model", help="the name of a model spec")
    explain.add_argument("key", nargs="?", help="the entity row's key: the value of its key column (the values of several "
                                     "key columns, separated by commas)")
    explain.add_argument("--date", type=date_argument, help="only the prediction for this event date (YYYY-MM-DD)")
    explain.add_argument("--full-spec", action="store_true",
                         help="print the recorded feature sets and sources too, not only the model's spec")
    explain.add_argument("--top", type=_positive_count, default=5,
                         help="how many of the contributions that moved the prediction most to show (default 5)")
    explain.add_argument("--served", action="store_true",
                         help="the latest online prediction served for KEY (`ml-platform serve`), not a batch one")
    explain.add_argument("--request-id", help="the online prediction served for this request id (and KEY, when "
                                              "the request held several rows)")
    explain.set_defaults(handler=command_explain)

    diff = commands.add_parser(
        "diff", help="unified diff of two specs (spec files or model versions) and what they depend on",
        description="A and B are each a model spec file, a model version or a training run key (then the spec "
                    "recorded for that training run). The model, its feature sets and its sources are compared. "
                    "Exit code 0: identical; 1: they differ.")
    diff.add_argument("a", metavar="A", help="spec file, model version or training run")
    diff.add_argument("b", metavar="B", help="spec file, model version or training run")
    diff.set_defaults(handler=command_diff)

    compare = commands.add_parser(
        "compare", help="two training runs or model versions side by side: money with intervals, metrics, "
                        "decision, slices, feature importance shift, spec diff",
        description="A and B are each a training run key or a model version. Money is shown on each run's own "
                    "test window with its 95%% interval, then on the test rows both scored, valued with B's money "
                    "values, with a paired interval. Exit code 0; 2 when A or B names nothing known.")
    compare.add_argument("a", metavar="A", help="training run or model version")
    compare.add_argument("b", metavar="B", help="training run or model version")
    compare.set_defaults(handler=command_compare)
