"""Errors a user can act on.

Anything raised as a MicrokubeError is printed by the CLI as one line and
turns into a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class MicrokubeError(Exception):
    """A failure with a message meant for the user."""

    exit_code = 1


class UsageError(MicrokubeError):
    """Bad input: arguments, a join string, a configuration file."""

    exit_code = 2


class NotRunningError(MicrokubeError):
    """The node is not running, so the request cannot be answered."""

    exit_code = 3


class NotSetUpError(NotRunningError):
    """The node was never set up (no settings, no credentials): nothing to talk to."""


def report_errors(action: Callable[[], int | None]) -> int:
    """Run a command-line entry point; a user-facing error becomes one line and its exit code."""
    try:
        return action() or 0
    except MicrokubeError as e:
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
