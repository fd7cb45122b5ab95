"""On-demand certificate renewal for ``microkube refresh-certs``."""

from __future__ import annotations

from microkube.node import setup
from microkube.node.runtime import Progress, runtime_for
from microkube.paths import Paths
from microkube.pki.node import refresh


def refresh_certs(paths: Paths, only: list[str] | None, progress: Progress) -> list[str]:
    """Re-issue leaf certificates (all, or the file names in ``only``).

    Returns the renewed file names, sorted. A running node is restarted so
    every daemon loads them. Raises MicrokubeError for an unknown name.
    """
    ctx = setup.load_context(paths)
    report = refresh(**setup.pki_identity(paths, ctx.node), only=only or None)
    runtime = runtime_for(paths)
    if runtime.is_running():
        progress("restarting microkube so every daemon loads the new certificates")
        runtime.restart(progress)
    return sorted(report.renewed)
