"""`dagster dev` as `ml-platform ui` runs it (written for Dagster 1.13.27): `python -m ml_platform.adapters.dev_server
ARGS...` is `dagster dev ARGS...` without the notice that `dg dev` supersedes it.

`dg` is the command of Dagster's project scaffolding, which this project does not use; the notice would be the
first line a user reads. Only that one warning is filtered, by its text: every other warning and every error of
the web server, the daemon and the code server is shown as before.
"""

from __future__ import annotations

import sys
import warnings

SUPERSEDED_NOTICE = r"Function `dev_command` is superseded"


def main(arguments: list[str]) -> None:
    """Run `dagster dev` with `arguments`, the `dg dev` notice filtered."""
    warnings.filterwarnings("ignore", message=SUPERSEDED_NOTICE)
    from dagster._cli import main as dagster_main

    sys.argv = ["dagster", "dev", *arguments]
    dagster_main()


if __name__ == "__main__":
    main(sys.argv[1:])
