"""The ``microkube`` command.

Commands live in one module per verb group and stay thin: parse, call,
print. This module imports nothing heavy: ``microkube kubectl|ctr|helm`` exec
their tool before click or any verb is imported, and the verbs' own heavy
imports happen inside the commands, so ``microkube status`` starts fast.
Every error meant for the user is printed as one line.
"""

from __future__ import annotations

import sys

# Tools whose arguments go to them untouched.
PASSTHROUGH = ("kubectl", "ctr", "helm")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user-facing errors into one line."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in PASSTHROUGH:
        # Straight to the tool, arguments untouched ('--' included) and no CLI set-up cost.
        from microkube.errors import MicrokubeError
        from microkube.node.tools import exec_tool

        try:
            exec_tool(args[0], args[1:])
        except MicrokubeError as e:
            print(f"Error: {e}", file=sys.stderr)
            sys.exit(e.exit_code)
    from microkube.cli.group import run

    run(argv)
