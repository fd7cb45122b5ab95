"""When the node's certificates expire, and when a leaf is due for renewal.

Importing this module loads no ``cryptography``: the supervisor reads RENEW_WITHIN_DAYS
from it for the life of the node (see pki/expiry_summary.py for the cheap check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from microkube.paths import Paths

if TYPE_CHECKING:
    from microkube.pki.expiry import Expiry

# Leaf certificates are renewed when fewer days than this remain.
RENEW_WITHIN_DAYS = 30


def expiries(paths: Paths) -> list[Expiry]:
    """Every certificate of the node (certs and kubeconfigs), soonest expiry first."""
    from microkube.pki.expiry import check_expiry  # loads cryptography

    return check_expiry(paths.certs_dir, paths.credentials_dir)


def earliest_expiry(paths: Paths) -> Expiry | None:
    """The certificate that expires first, or None if the node has none yet."""
    found = expiries(paths)
    return found[0] if found else None


def renewal_due(paths: Paths) -> Expiry | None:
    """The earliest-expiring certificate if it is within RENEW_WITHIN_DAYS, else None."""
    first = earliest_expiry(paths)
    return first if first is not None and first.days_left < RENEW_WITHIN_DAYS else None
