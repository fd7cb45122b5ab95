"""When the node's certificates expire, and which leaf is due for renewal first.

Importing this module loads no ``cryptography`` (the report it reads does, when
called); the supervisor plans its checks from pki/expiry_summary.py, which keeps
these answers in a small index. When a leaf is due is pki/lifetime.py's rule.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from microkube.paths import Paths

if TYPE_CHECKING:
    from microkube.pki.expiry import Expiry, Report


def expiries(paths: Paths) -> list[Expiry]:
    """Every certificate of the node (certs and kubeconfigs), soonest expiry first."""
    from microkube.pki.expiry import check_expiry  # loads cryptography

    return check_expiry(paths.certs_dir, paths.credentials_dir)


def certificate_report(paths: Paths) -> Report:
    """Every certificate of the node (certs and kubeconfigs) from one read: ``.expiries``
    as :func:`expiries` gives them, and ``.unreadable``, those that cannot be read, each
    (path, why)."""
    from microkube.pki.expiry import report  # loads cryptography

    return report(paths.certs_dir, paths.credentials_dir)


def earliest_expiry(paths: Paths) -> Expiry | None:
    """The certificate that expires first, or None if the node has none yet."""
    found = expiries(paths)
    return found[0] if found else None


def first_due(found: list[Expiry]) -> Expiry | None:
    """The leaf (not a CA) of ``found`` that is due for renewal first, or None if none."""
    leaves = [e for e in found if not e.is_ca]
    return min(leaves, key=lambda e: (e.renew_at, str(e.path))) if leaves else None


def renewal_due(paths: Paths, now: dt.datetime | None = None) -> Expiry | None:
    """The leaf due for renewal first if it is due at ``now`` (default: now), else None."""
    first = first_due(expiries(paths))
    now = now or dt.datetime.now(dt.UTC)
    return first if first is not None and first.renew_at <= now else None
