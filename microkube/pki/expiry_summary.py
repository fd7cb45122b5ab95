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

INDEX_VERSION = 1


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


def _index_path(paths: Paths) -> Path:
    return paths.run_dir / "certificate-expiry.json"


def _read_index(paths: Paths, key: list[list[Any]]) -> tuple[str, dt.datetime | None] | None:
    """The (file name, notAfter) the index holds for ``key``, or None if stale or unreadable."""
    try:
        data = json.loads(_index_path(paths).read_text())
        if data.get("version") != INDEX_VERSION or data.get("files") != key:
            return None
        earliest = data["earliest"]
        if earliest is None:
            return "", None
        return str(earliest["name"]), dt.datetime.fromisoformat(earliest["not_after"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_index(paths: Paths, key: list[list[Any]], name: str,
                 not_after: dt.datetime | None) -> None:
    earliest = None if not_after is None else {"name": name, "not_after": not_after.isoformat()}
    body = json.dumps({"version": INDEX_VERSION, "files": key, "earliest": earliest})
    # A read-only caller (e.g. status as a user) just computes it next time too.
    with contextlib.suppress(OSError):
        write_atomic(_index_path(paths), body.encode(), mode=0o644)


def earliest_expiry_summary(paths: Paths,
                            now: dt.datetime | None = None) -> tuple[str, int | None]:
    """The file name of the certificate that expires first and its whole days left.

    Takes the node's paths and the current time (UTC; defaults to now). Returns
    ("", None) when the node has no readable certificate. Whole days are counted
    as :func:`microkube.pki.certs.days_left` does (floor of the time left).
    Never raises for unreadable files: this feeds a status line.
    """
    key = _stat_key(_certificate_files(paths))
    cached = _read_index(paths, key)
    if cached is None:
        from microkube.pki.renewal import earliest_expiry  # loads cryptography

        found = earliest_expiry(paths)
        cached = (found.path.name, found.not_after) if found else ("", None)
        if paths.run_dir.is_dir():
            _write_index(paths, key, *cached)
    name, not_after = cached
    if not_after is None:
        return "", None
    now = now or dt.datetime.now(dt.UTC)
    return name, (not_after - now).days
