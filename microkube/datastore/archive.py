"""The backup file: a gzipped tarball of a datastore snapshot and what reads it back.

Members, all regular files at the top level:

- ``manifest.json``: format name and version, when and where it was taken, the
  datastore's kind and version, and the size and sha256 of every other member;
- ``snapshot.db``: the etcd snapshot, or the copy of a sqlite node's kine database;
- ``encryption-config.yaml``: the keys the snapshot's Secrets are encrypted with.

Because of the last one the file is as secret as the node's keys: it is written
0600. Reading checks everything (member names and types, the manifest, every
hash) before a single byte reaches its destination's final place, so a corrupt
or foreign file is refused before anything is touched.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from microkube.errors import UsageError

FORMAT = "microkube-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SNAPSHOT = "snapshot.db"
ENCRYPTION_CONFIG = "encryption-config.yaml"
MEMBERS = (SNAPSHOT, ENCRYPTION_CONFIG)
# The datastores a backup may hold: the embedded ones (datastore/settings.py).
KINDS = ("etcd", "sqlite")
_CHUNK = 1 << 20


class BackupFileError(UsageError):
    """The file is not a backup this microkube can restore; the message is one line."""


@dataclass(frozen=True)
class Manifest:
    """The manifest's fields; ``files`` maps a member name to (size in bytes, sha256 hex)."""

    created: str
    node: dict[str, str]
    datastore: dict[str, Any]
    files: dict[str, tuple[int, str]]
    microkube_version: str

    def to_json(self) -> str:
        """The manifest as stored in the archive."""
        return json.dumps({
            "format": FORMAT, "format_version": FORMAT_VERSION, "created": self.created,
            "microkube_version": self.microkube_version, "node": self.node,
            "datastore": self.datastore,
            "files": {n: {"size": s, "sha256": h} for n, (s, h) in self.files.items()},
        }, indent=2) + "\n"


def file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of a file."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def write(dest: Path, manifest: Manifest, members: dict[str, Path]) -> None:
    """Write the archive to ``dest`` atomically, 0600; ``members`` maps a name to its file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                data = manifest.to_json().encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode = len(data), 0o600
                tar.addfile(info, io.BytesIO(data))
                for name, path in members.items():
                    info = tarfile.TarInfo(name)
                    info.size, info.mode = path.stat().st_size, 0o600
                    with path.open("rb") as f:
                        tar.addfile(info, f)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_manifest(data: bytes, source: str) -> Manifest:
    """Check and read a manifest; BackupFileError naming ``source`` if it is not ours."""
    def bad(why: str) -> BackupFileError:
        return BackupFileError(f"{source}: not a microkube backup ({why})")

    try:
        raw = json.loads(data)
    except ValueError:
        raise bad("its manifest is not JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise bad(f"its manifest does not say format {FORMAT}")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise BackupFileError(f"{source}: backup format version {version} is not one this "
                              f"microkube reads (up to {FORMAT_VERSION})")
    files = raw.get("files")
    if not isinstance(files, dict) or SNAPSHOT not in files:
        raise bad("its manifest lists no snapshot")
    parsed: dict[str, tuple[int, str]] = {}
    for name, entry in files.items():
        if name not in MEMBERS or not isinstance(entry, dict) \
                or not isinstance(entry.get("size"), int) or not isinstance(entry.get("sha256"), str):
            raise bad(f"its manifest has a bad entry for '{name}'")
        parsed[name] = (entry["size"], entry["sha256"])
    datastore = raw.get("datastore")
    if not isinstance(datastore, dict) or datastore.get("kind") not in KINDS:
        raise BackupFileError(f"{source}: the backup is of a datastore other than "
                              f"{' or '.join(KINDS)}")
    node = raw.get("node") if isinstance(raw.get("node"), dict) else {}
    return Manifest(str(raw.get("created", "")), dict(node or {}), datastore, parsed,
                    str(raw.get("microkube_version", "")))


def extract(source: Path, into: Path) -> Manifest:
    """Check the archive at ``source`` and write its members into the directory ``into``.

    Everything is verified: a gzipped tar, only known regular files, a manifest of
    our format first, each member's size and sha256. Raises BackupFileError (one
    line) otherwise; what was written into ``into`` is then the caller's to drop.
    """
    name = str(source)
    try:
        raw = source.open("rb")
    except FileNotFoundError:
        raise BackupFileError(f"{name}: no such file") from None
    except OSError as e:  # a link loop, no permission: the file, not the archive, is the problem
        raise BackupFileError(f"{name}: cannot be read ({e.strerror})") from None
    try:
        with raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
            return _extract_members(tar, name, into)
    except tarfile.ReadError:
        raise BackupFileError(f"{name}: not a microkube backup (not a readable gzipped tar "
                              "archive)") from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BackupFileError(f"{name}: the archive is damaged ({type(e).__name__}: {e})") from None


def _extract_members(tar: tarfile.TarFile, name: str, into: Path) -> Manifest:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isfile() or first.size > _CHUNK:
        raise BackupFileError(f"{name}: not a microkube backup (no {MANIFEST} at its start)")
    manifest = parse_manifest(_read(tar, first), name)
    seen: set[str] = set()
    while (member := tar.next()) is not None:
        if member.name not in manifest.files or not member.isfile() or member.name in seen:
            raise BackupFileError(f"{name}: unexpected member '{member.name}' in the archive")
        seen.add(member.name)
        size, digest = manifest.files[member.name]
        got = _copy(tar.extractfile(member), into / member.name, size)
        if got != (size, digest):
            raise BackupFileError(f"{name}: corrupt: {member.name} does not match the sha256 "
                                  "and size in its manifest")
    missing = sorted(set(manifest.files) - seen)
    if missing:
        raise BackupFileError(f"{name}: incomplete: {', '.join(missing)} missing from the archive")
    return manifest


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    return f.read() if f else b""


def _copy(src: IO[bytes] | None, dest: Path, limit: int) -> tuple[int, str]:
    """Copy ``src`` to the new file ``dest``; (bytes read, sha256 hex). Stops once more than
    ``limit`` bytes came (the manifest's size: the result then cannot match it), so a member
    that inflates far beyond what the manifest says never fills the disk."""
    h = hashlib.sha256()
    size = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while src is not None and (chunk := src.read(_CHUNK)):
            size += len(chunk)
            if size > limit:
                break
            h.update(chunk)
            out.write(chunk)
    return size, h.hexdigest()
