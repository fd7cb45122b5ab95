"""DNS name rules the PKI and the cluster agent share, without loading ``cryptography``.

The cluster agent checks a joining node's name on every request but signs
certificates only when a join completes, so it keeps this check apart from the
signing profiles (pki/profiles.py), which need ``cryptography``.
"""

from __future__ import annotations

import re

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def is_dns1123_subdomain(name: str) -> bool:
    """True if ``name`` is a DNS-1123 subdomain (at most 253 characters), as Kubernetes requires."""
    return len(name) <= 253 and bool(_DNS1123.match(name))
