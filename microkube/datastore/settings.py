"""The node's datastore setting: which store holds the cluster's objects, chosen once.

- ``etcd`` (the default): the embedded etcd member (services/etcd.py);
- ``sqlite``: kine over a SQLite file of the node (services/kine.py);
- ``postgres://…`` / ``mysql://…``: kine against an external database;
- ``https://…`` (one or a list): an external etcd cluster; no local datastore runs.

The kind is kept in the node's settings (config/node.py); the endpoint, which may
carry a password, and the TLS files of an external store are kept 0600 under the
node's credentials directory. This module parses and masks; it reads no network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from microkube.errors import UsageError
from microkube.fsutil import write_private
from microkube.paths import Paths

ETCD = "etcd"
SQLITE = "sqlite"
POSTGRES = "postgres"
MYSQL = "mysql"
EXTERNAL_ETCD = "external-etcd"
KINDS = (ETCD, SQLITE, POSTGRES, MYSQL, EXTERNAL_ETCD)
# The kinds kine serves; the API server reaches kine as it would a local etcd member.
KINE_KINDS = (SQLITE, POSTGRES, MYSQL)
EMBEDDED_KINDS = (ETCD, SQLITE)
_SCHEMES = {"postgres": POSTGRES, "postgresql": POSTGRES, "mysql": MYSQL, "https": EXTERNAL_ETCD}
# The TLS files of an external store: role -> file name under credentials/datastore/.
TLS_FILES = {"ca": "ca.crt", "cert": "client.crt", "key": "client.key"}


@dataclass(frozen=True)
class Datastore:
    """A checked datastore setting.

    ``endpoints``: the external store's URLs with any credentials (empty for etcd and
    sqlite; one for postgres/mysql; one or more for external etcd). ``tls`` maps "ca",
    "cert", "key" to the files given for it (copied under credentials/ when saved).
    """

    kind: str
    endpoints: tuple[str, ...] = ()
    tls: dict[str, Path] = field(default_factory=dict)

    @property
    def external(self) -> bool:
        return self.kind not in EMBEDDED_KINDS

    @property
    def uses_kine(self) -> bool:
        return self.kind in KINE_KINDS

    def display(self) -> str:
        """The setting as a user may see it: passwords replaced by ``***``."""
        return ",".join(mask(e) for e in self.endpoints) or self.kind


def mask(url: str) -> str:
    """``url`` with the password of its user info, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def parse(value: str | Sequence[str], tls: dict[str, Path] | None = None) -> Datastore:
    """Check a datastore setting (a kind, a URL, or a list of https URLs).

    ``tls`` maps "ca"/"cert"/"key" to files for an external store. Raises UsageError
    (one line, without a key prefix: the caller names where the value came from).
    """
    values = [value] if isinstance(value, str) else list(value) \
        if isinstance(value, (list, tuple)) else []
    tls = dict(tls or {})
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise UsageError("expected etcd, sqlite, a postgres:// or mysql:// URL, "
                         "or https:// etcd URLs")
    values = [v.strip() for v in values]
    if len(values) == 1 and values[0] in (ETCD, SQLITE):
        if tls:
            raise UsageError(f"TLS files are for an external datastore, not {values[0]}")
        return Datastore(values[0])
    kinds = {_kind_of(v) for v in values}
    if len(kinds) > 1 or (len(values) > 1 and kinds != {EXTERNAL_ETCD}):
        raise UsageError("a list of endpoints must be https:// URLs of one etcd cluster")
    kind = kinds.pop()
    if kind == EXTERNAL_ETCD and any(urlsplit(v).username for v in values):
        raise UsageError("an etcd endpoint takes no user or password (the API server "
                         "authenticates to etcd with a client certificate)")
    for role, path in tls.items():
        if role not in TLS_FILES:
            raise UsageError(f"unknown TLS file role '{role}'")
        if not Path(path).exists():
            raise UsageError(f"{path}: no such file (the datastore's {role} file)")
        if not Path(path).is_file():
            raise UsageError(f"{path}: not a regular file (the datastore's {role} file)")
    if ("cert" in tls) != ("key" in tls):
        raise UsageError("a client certificate needs its key, and a key its certificate")
    return Datastore(kind, tuple(values), {k: Path(v) for k, v in tls.items()})


_MYSQL_TCP = re.compile(r"@tcp\(([^()]*)\)")


def _kind_of(url: str) -> str:
    # k3s's MySQL form names the protocol: mysql://user:pass@tcp(host:3306)/db.
    try:
        parts = urlsplit(_MYSQL_TCP.sub(r"@\1", url) if url.startswith("mysql:") else url)
    except ValueError as e:  # 'https://[::1': not a URL at all (mask cannot parse it either)
        raise UsageError(f"not a URL ({e})") from None
    kind = _SCHEMES.get(parts.scheme)
    if kind is None:
        raise UsageError(f"'{mask(url)}' is not etcd, sqlite, or a postgres://, mysql:// or "
                         "https:// URL")
    try:
        _ = parts.port
    except ValueError:
        raise UsageError(f"'{mask(url)}': the port is not a port number (0-65535)") from None
    if not parts.hostname:
        raise UsageError(f"'{mask(url)}' names no host")
    if kind != EXTERNAL_ETCD and parts.path.strip("/") in ("", None):
        raise UsageError(f"'{mask(url)}' names no database (add /<name> after the host)")
    return kind


def kine_endpoint(store: Datastore) -> str:
    """The ``--endpoint`` kine takes for ``store``: a MySQL URL in go-sql-driver's form
    (``mysql://user:pass@tcp(host:port)/db``), any other as given. ValueError for etcd."""
    if not store.uses_kine or store.kind == SQLITE:
        raise ValueError(f"kine has no external endpoint for {store.kind}")
    url = store.endpoints[0]
    if store.kind != MYSQL or _MYSQL_TCP.search(url):
        return url
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    host = f"{parts.hostname}:{parts.port or 3306}"
    netloc = f"{user}@tcp({host})" if user else f"tcp({host})"
    return urlunsplit(parts._replace(netloc=netloc))


# --- kept on disk ---------------------------------------------------------------------

def _record(paths: Paths) -> Path:
    return paths.credentials_dir / "datastore.json"


def tls_dir(paths: Paths) -> Path:
    """Where an external datastore's CA, client certificate and key are kept (0600)."""
    return paths.credentials_dir / "datastore"


def save(paths: Paths, store: Datastore) -> None:
    """Keep an external store's endpoints and copies of its TLS files, all 0600.

    The kind itself lives in the node's settings; nothing is written for etcd or sqlite.
    """
    if not store.external:
        return
    kept: dict[str, str] = {}
    for role, src in store.tls.items():
        dest = tls_dir(paths) / TLS_FILES[role]
        write_private(dest, src.read_bytes())
        kept[role] = str(dest)
    tls_dir(paths).mkdir(mode=0o700, exist_ok=True)
    write_private(_record(paths), json.dumps({"kind": store.kind,
                                              "endpoints": list(store.endpoints),
                                              "tls": kept}, indent=1) + "\n")


def load(paths: Paths, kind: str) -> Datastore:
    """The node's datastore of ``kind`` (from its settings) with what save() kept.

    Raises UsageError if an external store's record is missing or damaged.
    """
    if kind not in KINDS:
        raise UsageError(f"datastore '{kind}' is not one of {', '.join(KINDS)}")
    if kind in EMBEDDED_KINDS:
        return Datastore(kind)
    path = _record(paths)
    try:
        raw = json.loads(path.read_text())
        endpoints = tuple(str(e) for e in raw["endpoints"])
        tls = {str(k): Path(v) for k, v in raw.get("tls", {}).items()}
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; the {kind} datastore's endpoint is unknown") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UsageError(f"{path}: damaged; expected the datastore's endpoints") from None
    return Datastore(kind, endpoints, tls)


def to_share(paths: Paths, store: Datastore) -> dict[str, object]:
    """What a joining control plane needs to use the external ``store`` this node uses:
    ``{"kind", "endpoints", "tls": {role: file text}}`` (credentials included: sent only
    over the CA-pinned join channel). OSError if a kept TLS file cannot be read."""
    return {"kind": store.kind, "endpoints": list(store.endpoints),
            "tls": {role: Path(path).read_text() for role, path in store.tls.items()}}


def from_share(paths: Paths, shared: object) -> Datastore:
    """Check what :func:`to_share` made on another node and keep it here (0600), as
    :func:`save` keeps a setting given at first start; the kept datastore.

    Raises UsageError for a malformed answer or one that names no external store.
    """
    try:
        if not isinstance(shared, dict):
            raise TypeError(shared)
        kind, endpoints, tls = shared["kind"], shared["endpoints"], dict(shared.get("tls") or {})
        store = parse([str(e) for e in endpoints])
        if store.kind != kind or not store.external or set(tls) - set(TLS_FILES):
            raise ValueError(kind)
    except (UsageError, KeyError, TypeError, ValueError):
        raise UsageError("the datastore the control plane shared is malformed") from None
    kept = {}
    for role, text in tls.items():
        dest = tls_dir(paths) / TLS_FILES[role]
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(dest, str(text))
        kept[role] = dest
    store = Datastore(store.kind, store.endpoints, kept)
    save(paths, store)
    return store


def address(store: Datastore) -> tuple[str, int]:
    """(host, port) of an external SQL database (default ports 5432, 3306); ValueError for
    another kind."""
    if store.kind not in (POSTGRES, MYSQL):
        raise ValueError(f"{store.kind} is not an external SQL database")
    url = store.endpoints[0]
    parts = urlsplit(_MYSQL_TCP.sub(r"@\1", url) if store.kind == MYSQL else url)
    return parts.hostname or "", parts.port or (5432 if store.kind == POSTGRES else 3306)


def forget(paths: Paths) -> None:
    """Remove what save() kept (a first start that failed leaves nothing behind)."""
    import shutil  # here: its compressors cost status, which only reads the settings

    _record(paths).unlink(missing_ok=True)
    shutil.rmtree(tls_dir(paths), ignore_errors=True)
