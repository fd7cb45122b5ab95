"""The expiry report: when each of the node's certificates runs out.

It reads certificate files and the client certificates inside kubeconfigs, so it
sits above both ``certs`` (the primitives) and ``kubeconfig``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from cryptography import x509

from microkube.pki.certs import days_left, load_cert, utcnow
from microkube.pki.errors import PkiError
from microkube.pki.kubeconfig import read_kubeconfig
from microkube.pki.lifetime import renew_at


class Expiry(NamedTuple):
    """One certificate: the file it is in, its notAfter (UTC), whole days left, its
    notBefore (UTC) and whether it is a CA (CAs are never renewed)."""

    path: Path
    not_after: dt.datetime
    days_left: int
    not_before: dt.datetime
    is_ca: bool = False

    @property
    def renew_at(self) -> dt.datetime:
        """When this certificate is due for renewal (pki/lifetime.py)."""
        return renew_at(self.not_before, self.not_after)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _pem_certs_in(directory: Path) -> Iterator[Path]:
    yield from sorted(p for p in directory.rglob("*.crt") if p.is_file())


def check_expiry(
    certs_dir: Path,
    credentials_dir: Path | None = None,
    now: dt.datetime | None = None,
) -> list[Expiry]:
    """Every certificate under ``certs_dir`` (and in kubeconfigs under
    ``credentials_dir``), soonest to expire first. Unreadable files are skipped:
    this feeds a status warning, which must not fail on one bad file."""
    now = now or utcnow()
    found: list[Expiry] = []
    for path in _pem_certs_in(certs_dir) if certs_dir.is_dir() else ():
        try:
            cert = load_cert(path)
        except PkiError:
            continue
        found.append(Expiry(path, cert.not_valid_after_utc, days_left(cert, now),
                            cert.not_valid_before_utc, _is_ca(cert)))
    if credentials_dir is not None and credentials_dir.is_dir():
        for path in sorted(credentials_dir.glob("*.config")):
            try:
                client = read_kubeconfig(path).client_cert()
            except PkiError:
                continue
            if client is not None:
                found.append(Expiry(path, client.not_valid_after_utc, days_left(client, now),
                                    client.not_valid_before_utc))
    return sorted(found, key=lambda e: (e.not_after, str(e.path)))
