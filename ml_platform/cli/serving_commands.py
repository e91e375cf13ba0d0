"""`ml-platform serve`: the live champions over HTTP, bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import sys

from ml_platform.cli.common import ERROR, project_of


def command_serve(arguments: argparse.Namespace) -> int:
    """Serve every deployed model's champion until interrupted."""
    import uvicorn

    from ml_platform.errors import PlatformError
    from ml_platform.serving.app import create_app
    from ml_platform.serving.state import ServedState

    try:
        state = ServedState(project_of(arguments), poll_seconds=arguments.poll_seconds)
    except PlatformError as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    for problem in state.problems:
        print(f"not served: {problem}", file=sys.stderr)
    served = ", ".join(f"{name} {model.trained.model_version}" for name, model in state.current.champions.items())
    print(f"serving {served or 'no model'} on http://{arguments.host}:{arguments.port}", file=sys.stderr)
    uvicorn.run(create_app(state), host=arguments.host, port=arguments.port, log_level="warning",
                access_log=False)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the serve subcommand."""
    serve = commands.add_parser("serve", help="serve the live champions' predictions over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8300, help="port (default 8300)")
    serve.add_argument("--poll-seconds", type=float, default=0.5,
                       help="how often the promotion log and data versions are checked for a hot swap")
    serve.set_defaults(handler=command_serve)
