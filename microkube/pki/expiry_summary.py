"""The certificate that expires first, answered without loading ``cryptography``.

``status`` shows it on every run and must stay fast, but parsing X.509 means
importing ``cryptography`` (about 50 ms). The full report from
:mod:`microkube.pki.expiry` is therefore kept in a small JSON index beside the
node's runtime files, keyed by every certificate file's path, size and mtime.
While no certificate or kubeconfig changed, the index answers; a renewal, a
join or a hand edit changes a key and the report is computed again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import Any

from microkube.fsutil import write_atomic
from microkube.paths import Paths

INDEX_VERSION = 2


def _certificate_files(paths: Paths) -> list[Path]:
    """The files the expiry report reads: *.crt under certs, *.config under credentials."""
    found: list[Path] = []
    if paths.certs_dir.is_dir():
        found += sorted(p for p in paths.certs_dir.rglob("*.crt") if p.is_file())
    if paths.credentials_dir.is_dir():
        found += sorted(paths.credentials_dir.glob("*.config"))
    return found


def _stat_key(files: list[Path]) -> list[list[Any]]:
    """One [path, size in bytes, mtime in ns] per file that still exists."""
    key: list[list[Any]] = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        key.append([str(path), st.st_size, st.st_mtime_ns])
    return key


def certificate_stamps(paths: Paths) -> dict[str, tuple[int, int]]:
    """(size in bytes, mtime in ns) of every certificate and kubeconfig, by the name reports
    give it (``server.crt``, ``etcd/server.crt``, ``kubelet.config``). Compare two with
    :func:`changed_files` to see what a renewal rewrote, without parsing a certificate."""
    return {paths.pki.display_name(Path(p)): (size, mtime)
            for p, size, mtime in _stat_key(_certificate_files(paths))}


def changed_files(before: dict[str, tuple[int, int]],
                  after: dict[str, tuple[int, int]]) -> list[str]:
    """The names whose stamp differs between two :func:`certificate_stamps` (new, rewritten
    or gone), sorted."""
    return sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))


def _index_path(paths: Paths) -> Path:
    return paths.run_dir / "certificate-expiry.json"


# (file name, a time): the certificate that expires first and its notAfter, or the leaf
# due for renewal first and when it is due. ("", None) when there is none.
Entry = tuple[str, dt.datetime | None]


def _entry(doc: Any) -> Entry:
    if doc is None:
        return "", None
    return str(doc["name"]), dt.datetime.fromisoformat(doc["at"])


def _read_index(paths: Paths, key: list[list[Any]]) -> tuple[Entry, Entry] | None:
    """The (earliest expiry, first renewal) the index holds for ``key``; None if stale or
    unreadable."""
    try:
        data = json.loads(_index_path(paths).read_text())
        if data.get("version") != INDEX_VERSION or data.get("files") != key:
            return None
        return _entry(data["earliest"]), _entry(data["renewal"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_index(paths: Paths, key: list[list[Any]], earliest: Entry, renewal: Entry) -> None:
    def doc(entry: Entry) -> dict[str, str] | None:
        name, at = entry
        return None if at is None else {"name": name, "at": at.isoformat()}

    body = json.dumps({"version": INDEX_VERSION, "files": key, "earliest": doc(earliest),
                       "renewal": doc(renewal)})
    # A read-only caller (e.g. status as a user) just computes it next time too.
    with contextlib.suppress(OSError):
        write_atomic(_index_path(paths), body.encode(), mode=0o644)


def _summary(paths: Paths) -> tuple[Entry, Entry]:
    """(earliest expiry, first renewal), from the index while no certificate file changed."""
    key = _stat_key(_certificate_files(paths))
    cached = _read_index(paths, key)
    if cached is None:
        from microkube.pki.renewal import certificate_report, first_due

        found, unreadable = certificate_report(paths)  # loads cryptography; one read a file
        due = first_due(found)
        renewal: Entry = (paths.pki.display_name(due.path), due.renew_at) if due else ("", None)
        # A damaged leaf is due now: renewal writes it anew (a CA it cannot).
        damaged = [p for p, _ in unreadable if not paths.pki.is_ca_cert(p)]
        if damaged:
            renewal = (paths.pki.display_name(damaged[0]), dt.datetime.now(dt.UTC))
        cached = ((found[0].path.name, found[0].not_after) if found else ("", None), renewal)
        if paths.run_dir.is_dir():
            _write_index(paths, key, *cached)
    return cached


def next_renewal(paths: Paths) -> Entry:
    """The leaf certificate due for renewal first (its name as reports give it:
    ``server.crt``, ``etcd/server.crt``, ``admin.config``) and when it is due (aware UTC;
    pki/lifetime.py). ("", None) when the node has no readable leaf. Never raises for
    unreadable files; answers without ``cryptography`` while no certificate changed.
    """
    return _summary(paths)[1]


def earliest_expiry_summary(paths: Paths,
                            now: dt.datetime | None = None) -> tuple[str, int | None]:
    """The file name of the certificate that expires first and its whole days left.

    Takes the node's paths and the current time (UTC; defaults to now). Returns
    ("", None) when the node has no readable certificate. Whole days are counted
    as :func:`microkube.pki.certs.days_left` does (floor of the time left).
    Never raises for unreadable files: this feeds a status line.
    """
    name, not_after = _summary(paths)[0]
    if not_after is None:
        return "", None
    now = now or dt.datetime.now(dt.UTC)
    return name, (not_after - now).days
