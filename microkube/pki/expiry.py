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


def _scan(certs_dir: Path, credentials_dir: Path | None
          ) -> Iterator[tuple[Path, x509.Certificate | PkiError | None, bool]]:
    """(file, its certificate or why it cannot be read, whether it is a certificate file)
    for every certificate under ``certs_dir`` and kubeconfig under ``credentials_dir``;
    None for a kubeconfig without a client certificate."""
    for path in _pem_certs_in(certs_dir) if certs_dir.is_dir() else ():
        try:
            yield path, load_cert(path), True
        except PkiError as e:
            yield path, e, True
    if credentials_dir is not None and credentials_dir.is_dir():
        for path in sorted(credentials_dir.glob("*.config")):
            try:
                yield path, read_kubeconfig(path).client_cert(), False
            except PkiError as e:
                yield path, e, False


class Report(NamedTuple):
    """What one read of the node's certificate files tells: :func:`check_expiry`'s list and
    :func:`unreadable`'s list, each in that function's order."""

    expiries: list[Expiry]
    unreadable: list[tuple[Path, str]]


def report(
    certs_dir: Path,
    credentials_dir: Path | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """:func:`check_expiry`'s and :func:`unreadable`'s answers from one read of each file
    (for a caller that wants both: calling the two would parse every certificate twice)."""
    now = now or utcnow()
    found: list[Expiry] = []
    bad: list[tuple[Path, str]] = []
    for path, cert, is_file in _scan(certs_dir, credentials_dir):
        if isinstance(cert, x509.Certificate):
            found.append(Expiry(path, cert.not_valid_after_utc, days_left(cert, now),
                                cert.not_valid_before_utc, is_file and _is_ca(cert)))
        elif isinstance(cert, PkiError):
            bad.append((path, str(cert).removeprefix(f"{path}: ")))
    return Report(sorted(found, key=lambda e: (e.not_after, str(e.path))), bad)


def check_expiry(
    certs_dir: Path,
    credentials_dir: Path | None = None,
    now: dt.datetime | None = None,
) -> list[Expiry]:
    """Every certificate under ``certs_dir`` (and in kubeconfigs under
    ``credentials_dir``), soonest to expire first. Unreadable files are skipped:
    this feeds a status warning, which must not fail on one bad file
    (:func:`unreadable` lists them)."""
    return report(certs_dir, credentials_dir, now).expiries


def unreadable(certs_dir: Path, credentials_dir: Path | None = None) -> list[tuple[Path, str]]:
    """The certificate files and kubeconfigs :func:`check_expiry` skips, each with why it
    cannot be read (an empty or damaged file, say), in path order."""
    return report(certs_dir, credentials_dir).unreadable
