"""Errors a user can act on.

Anything raised as a MicrokubeError is printed by the CLI as one line and
turns into a non-zero exit, never a traceback.
"""


class MicrokubeError(Exception):
    """A failure with a message meant for the user."""

    exit_code = 1


class UsageError(MicrokubeError):
    """Bad input: arguments, a join string, a configuration file."""

    exit_code = 2


class NotRunningError(MicrokubeError):
    """The node is not running, so the request cannot be answered."""

    exit_code = 3
