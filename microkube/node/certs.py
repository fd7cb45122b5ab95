"""Certificate expiry checks and on-demand renewal for ``microkube refresh-certs``."""

from __future__ import annotations

from collections.abc import Callable

from microkube.node import control, setup
from microkube.paths import Paths
from microkube.pki.expiry import Expiry, check_expiry
from microkube.pki.node import refresh

# Leaf certificates are renewed on every start when fewer days than this remain.
RENEW_WITHIN_DAYS = 30


def expiries(paths: Paths) -> list[Expiry]:
    return check_expiry(paths.certs_dir, paths.credentials_dir)


def refresh_certs(paths: Paths, only: list[str] | None, progress: Callable[[str], None]) -> list[str]:
    """Re-issue leaf certificates; restart a running node so every daemon loads them."""
    ctx = setup.load_context(paths)
    report = refresh(**setup.pki_identity(paths, ctx.node), only=only or None)
    renewed = sorted(report.renewed)
    if control.is_running(paths):
        progress("restarting microkube so every daemon loads the new certificates")
        control.stop(paths, progress)
        control.start(paths, progress)
    return renewed
