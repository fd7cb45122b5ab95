"""When the node's certificates expire, and when a leaf is due for renewal."""

from __future__ import annotations

from microkube.paths import Paths
from microkube.pki.expiry import Expiry, check_expiry

# Leaf certificates are renewed when fewer days than this remain.
RENEW_WITHIN_DAYS = 30


def expiries(paths: Paths) -> list[Expiry]:
    """Every certificate of the node (certs and kubeconfigs), soonest expiry first."""
    return check_expiry(paths.certs_dir, paths.credentials_dir)


def earliest_expiry(paths: Paths) -> Expiry | None:
    """The certificate that expires first, or None if the node has none yet."""
    found = expiries(paths)
    return found[0] if found else None


def renewal_due(paths: Paths) -> Expiry | None:
    """The earliest-expiring certificate if it is within RENEW_WITHIN_DAYS, else None."""
    first = earliest_expiry(paths)
    return first if first is not None and first.days_left < RENEW_WITHIN_DAYS else None
