"""What kine needs to reach the node's database, and how to read its complaints.

Shared by the kine daemon (services/kine.py), the check before a first start
(datastore/preflight.py), status and backups.
"""

from __future__ import annotations

import re
from pathlib import Path

from microkube.datastore import settings
from microkube.paths import Paths

# kine's plain log lines, colored even into a file: "\x1b[31mERRO\x1b[0m[<time>] <message>".
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG_ERROR = re.compile(r"^(?:ERRO|FATA)\[[^\]]*\]\s*(.*?)\s*$", re.M)


def sqlite_file(paths: Paths) -> Path:
    """The SQLite database of a ``sqlite`` node."""
    return paths.var_dir / "kine" / "state.db"


def sqlite_endpoint(paths: Paths) -> str:
    """kine's endpoint for the node's SQLite file, with k3s's connection options."""
    return (f"sqlite://{sqlite_file(paths)}"
            "?_journal=WAL&cache=shared&_busy_timeout=30000&_txlock=immediate")


def environment(paths: Paths, store: settings.Datastore) -> dict[str, str]:
    """The KINE_* variables that point kine at ``store``: its endpoint and TLS files.

    Raises ValueError for a store kine does not serve (etcd, external etcd).
    """
    if store.kind == settings.SQLITE:
        return {"KINE_ENDPOINT": sqlite_endpoint(paths)}
    env = {"KINE_ENDPOINT": settings.kine_endpoint(store)}
    names = {"ca": "KINE_CA_FILE", "cert": "KINE_CERT_FILE", "key": "KINE_KEY_FILE"}
    env.update({names[role]: str(path) for role, path in store.tls.items()})
    return env


def last_error(text: str) -> str | None:
    """The message of the last error or fatal line in kine's log ``text``, unquoted."""
    found = _LOG_ERROR.findall(_ANSI.sub("", text))
    return found[-1] if found else None


def log_error(paths: Paths, tail_bytes: int = 65536) -> str | None:
    """The last error kine logged on this node (from the end of its log), or None."""
    try:
        with paths.log_file("kine").open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - tail_bytes))
            return last_error(f.read().decode(errors="replace"))
    except OSError:
        return None
