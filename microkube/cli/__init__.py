"""The ``microkube`` command.

Commands live in one module per verb group and stay thin: parse, call,
print. This module imports nothing heavy: ``microkube kubectl|ctr|helm`` exec
their tool before click or any verb is imported, ``microkube status`` with plain
options runs without click (microkube/cli/statuscmd.py), and the verbs' own heavy
imports happen inside the commands. Every error meant for the user is printed as
one line.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself costs ~5 ms of every command; mypy reads the block
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

# Tools whose arguments go to them untouched.
PASSTHROUGH = ("kubectl", "ctr", "helm")


def exit_for(e: BaseException) -> NoReturn:
    """Exit for an error that reached the top: a MicrokubeError as one line and its exit
    code, ^C as 130, anything else (a bug) as one line naming MICROKUBE_DEBUG, exit 70
    (re-raised when MICROKUBE_DEBUG is set)."""
    from microkube.errors import MicrokubeError

    if isinstance(e, MicrokubeError):
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    if isinstance(e, KeyboardInterrupt):
        sys.exit(130)
    if os.environ.get("MICROKUBE_DEBUG"):
        raise e
    # A bug, not bad input: still one line, with the way to see more.
    print(f"Error: internal error ({type(e).__name__}: {e}); "
          "run again with MICROKUBE_DEBUG=1 for details", file=sys.stderr)
    sys.exit(70)


def _run(fn: Callable[[], int | None]) -> NoReturn:
    """Call ``fn`` and exit with what it returns (None: 0), or as :func:`exit_for` says."""
    try:
        code = fn()
    except (Exception, KeyboardInterrupt) as e:
        exit_for(e)
    sys.exit(code or 0)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user-facing errors into one line."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in PASSTHROUGH:
        # Straight to the tool, arguments untouched ('--' included) and no CLI set-up cost.
        from microkube.node.tools import exec_tool

        _run(lambda: exec_tool(args[0], args[1:]))
    if args and args[0] == "status":
        from microkube.cli.statuscmd import fast_options, show_status

        opts = fast_options(args[1:])
        if opts is not None:  # plain options: no click (help and bad input go to click)
            _run(lambda: show_status(*opts))
    from microkube.cli.group import run

    run(argv)
