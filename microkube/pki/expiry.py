"""The expiry report: when each of the node's certificates runs out.

It reads certificate files and the client certificates inside kubeconfigs, so it
sits above both ``certs`` (the primitives) and ``kubeconfig``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from microkube.pki.certs import days_left, load_cert, utcnow
from microkube.pki.errors import PkiError
from microkube.pki.kubeconfig import read_kubeconfig


class Expiry(NamedTuple):
    """One certificate: the file it is in, its notAfter (UTC) and whole days left."""

    path: Path
    not_after: dt.datetime
    days_left: int


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
        found.append(Expiry(path, cert.not_valid_after_utc, days_left(cert, now)))
    if credentials_dir is not None and credentials_dir.is_dir():
        for path in sorted(credentials_dir.glob("*.config")):
            try:
                client = read_kubeconfig(path).client_cert()
            except PkiError:
                continue
            if client is not None:
                found.append(Expiry(path, client.not_valid_after_utc, days_left(client, now)))
    return sorted(found, key=lambda e: (e.not_after, str(e.path)))
