"""``microkube status``, runnable without click: its options, parsed by hand when they are
plain, and the command itself.

click costs ~50 ms of every ``status`` on import alone, more than the rest of what
status imports. :func:`fast_options` reads the few forms status takes (``--format X``,
``--format=X``, ``--wait-ready``, ``--timeout N``, ``--timeout=N``); for anything else
(``--help``, a typo, a bad value) it answers None and the click command in
microkube/cli/node.py parses, so help and usage errors stay click's. Both run
:func:`show_status`.
"""

from __future__ import annotations

import sys

from microkube.node.report import FORMATS, render_status

__all__ = ["DEFAULT_FORMAT", "DEFAULT_TIMEOUT", "FORMATS", "fast_options", "show_status"]

# The defaults of both parsers (microkube/cli/node.py declares them to click).
DEFAULT_FORMAT = "pretty"
DEFAULT_TIMEOUT = 120  # s, --wait-ready's bound


def fast_options(args: list[str]) -> tuple[str, bool, int] | None:
    """(format, wait-ready, timeout in s) from status's arguments after the verb, or None
    when they are anything but the plain forms this parser knows (click then parses)."""
    fmt, wait_ready, timeout = DEFAULT_FORMAT, False, DEFAULT_TIMEOUT
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if arg == "--wait-ready":
            wait_ready = True
            continue
        if name not in ("--format", "--timeout"):
            return None
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        if name == "--format" and value in FORMATS:
            fmt = value
        elif name == "--timeout" and value.isdigit():
            timeout = int(value)
        else:
            return None
    return fmt, wait_ready, timeout


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def show_status(fmt: str, wait_ready: bool, timeout: int) -> int:
    """Print the node's status in ``fmt`` (one of FORMATS), after waiting up to ``timeout`` s
    for Ready when ``wait_ready``; the exit code: 0, 3 if microkube is not running, 1 if
    --wait-ready timed out."""
    from microkube.errors import MicrokubeError, NotRunningError
    from microkube.node import status as node_status
    from microkube.paths import Paths

    paths = Paths.from_env()
    st = (node_status.wait_for_ready(paths, timeout, _progress) if wait_ready
          else node_status.gather(paths))
    sys.stdout.write(render_status(st, fmt))
    sys.stdout.flush()
    if not st.running:
        return NotRunningError.exit_code
    if wait_ready and not st.ready:
        return MicrokubeError.exit_code
    return 0
