"""How long a leaf certificate lives, and when in its life it is renewed.

Pure time arithmetic, without ``cryptography``: the supervisor plans its next
certificate check from it for the life of the node.

- A leaf lives LEAF_VALIDITY (a year), or MICROKUBE_CERT_VALIDITY seconds when the
  environment of the process that signs sets it: a setting for tests, so renewal can be
  watched within minutes. :func:`leaf_validity` is the one place that reads it.
- A leaf is renewed once less than a third of its lifetime is left, and never later
  than 30 days before it expires: 30 days for a year-long certificate, 20 minutes
  for a one-hour one. A third is cert-manager's default (``renewBefore`` is
  duration / 3 unless set; cert-manager ``pkg/util/pki/renewaltime.go``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

from microkube.errors import UsageError

LEAF_VALIDITY = dt.timedelta(days=365)
# Environment variable: leaf validity in seconds, for tests that watch renewal happen.
VALIDITY_ENV = "MICROKUBE_CERT_VALIDITY"
# The shortest validity the setting accepts (s): renewal, a restart and a retry must fit.
MIN_VALIDITY_SECONDS = 60
# Renew at most this long before expiry: a month of warnings before a certificate breaks.
RENEW_BEFORE_MAX = dt.timedelta(days=30)
# ... and once less than this share of the lifetime is left.
RENEW_FRACTION = 1 / 3
# Validity starts a little in the past, so a node whose clock lags the signer's a few
# minutes still accepts the certificate; a tenth of the validity for short ones.
BACKDATE_MAX = dt.timedelta(hours=1)


def leaf_validity(env: Mapping[str, str] | None = None) -> dt.timedelta:
    """How long a leaf signed now lives: MICROKUBE_CERT_VALIDITY seconds if ``env`` (default
    os.environ) sets it, else LEAF_VALIDITY.

    Raises UsageError for a value that is not a whole number of seconds from
    MIN_VALIDITY_SECONDS to LEAF_VALIDITY's (the setting shortens; a longer one, or one
    past what a date can hold, is refused rather than overflowing).
    """
    raw = (os.environ if env is None else env).get(VALIDITY_ENV, "").strip()
    if not raw:
        return LEAF_VALIDITY
    longest = int(LEAF_VALIDITY.total_seconds())
    if not raw.isdigit() or not MIN_VALIDITY_SECONDS <= int(raw) <= longest:
        raise UsageError(f"{VALIDITY_ENV}={raw!r}: give a whole number of seconds, from "
                         f"{MIN_VALIDITY_SECONDS} to {longest}")
    return dt.timedelta(seconds=int(raw))


def backdate(validity: dt.timedelta) -> dt.timedelta:
    """How far before its issue a certificate of ``validity`` starts: an hour, or a tenth of
    a shorter validity."""
    return min(BACKDATE_MAX, validity / 10)


def renewal_window(lifetime: dt.timedelta) -> dt.timedelta:
    """How long before expiry a certificate living ``lifetime`` (notAfter - notBefore) is
    renewed: a third of it, at most RENEW_BEFORE_MAX."""
    return min(RENEW_BEFORE_MAX, max(dt.timedelta(0), lifetime) * RENEW_FRACTION)


def renew_at(not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    """When a certificate valid from ``not_before`` to ``not_after`` (aware UTC) is due."""
    return not_after - renewal_window(not_after - not_before)


def is_due(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime) -> bool:
    """True if a certificate with these bounds should be renewed at ``now``."""
    return now >= renew_at(not_before, not_after)
