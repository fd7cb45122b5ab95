"""``microkube dbctl backup`` and ``restore`` for the embedded datastores (etcd, sqlite).

On a sqlite node the snapshot is a consistent copy of kine's SQLite file
(sqlite_backup.py), packed and checked the same way. An external datastore
is backed up with its own tools; microkube refuses it with one line.

A backup is etcd's own consistent snapshot of the running member (etcdctl
``snapshot save``), packed with a manifest and the encryption keys
(archive.py). A restore needs a stopped node: etcdutl rebuilds a data
directory from the snapshot beside the live one, and only once that worked
is the old directory swapped out, then deleted. Restoring a member of a
multi-member etcd cluster is refused: the other members would keep the old data.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from microkube import __version__
from microkube.config import args
from microkube.datastore import archive, encryption, kine, rotation, settings, sqlite_backup
from microkube.datastore.etcdtools import EtcdTools
from microkube.errors import UsageError
from microkube.paths import Paths

# Revisions a restore jumps forward, as etcd advises, so no client ever sees one go back.
BUMP_REVISION = 1_000_000_000
BEFORE_RESTORE = ".before-restore"


@dataclass(frozen=True)
class BackupResult:
    """Where a backup went and what it holds (keys: datastore keys, size in bytes)."""

    path: Path
    keys: int
    size: int
    revision: int


def default_name(node_name: str, now: dt.datetime | None = None) -> str:
    """``microkube-backup-<node>-<UTC time>.tar.gz``."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
    return f"microkube-backup-{node_name}-{stamp}.tar.gz"


def backup(paths: Paths, output: Path | None) -> BackupResult:
    """Snapshot the running node's datastore into a backup file (default: one in the cwd).

    Raises NotRunningError if the node does not run, MicrokubeError if etcd fails.
    """
    from microkube.node.runtime import runtime_for
    from microkube.node.setup import load_context

    runtime_for(paths).require_running()
    ctx = load_context(paths)
    kind = embedded_kind(ctx.node.datastore)
    dest = (output or Path(default_name(ctx.node.node_name))).absolute()
    if dest.is_dir():
        raise UsageError(f"{dest} is a directory; give a file name with -o")
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".microkube-backup-") as tmp:
        snapshot = Path(tmp) / archive.SNAPSHOT
        if kind == settings.SQLITE:
            facts = sqlite_backup.save(kine.sqlite_file(paths), snapshot)
            store = {"kind": kind, "version": facts["version"], "revision": facts["revision"],
                     "total_keys": facts["total_keys"]}
        else:
            tools = EtcdTools(paths)
            tools.snapshot_save(snapshot)
            etcd = tools.snapshot_status(snapshot)
            store = {"kind": kind, "version": tools.server_version(),
                     "storage_version": etcd.get("version", ""),
                     "revision": etcd.get("revision"), "total_keys": etcd.get("totalKey")}
        members = {archive.SNAPSHOT: snapshot}
        if paths.encryption_config.exists():
            members[archive.ENCRYPTION_CONFIG] = paths.encryption_config
        manifest = archive.Manifest(
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            node={"name": ctx.node.node_name, "ip": ctx.node.node_ip,
                  "api_url": ctx.node.api_url, "hostname": socket.gethostname()},
            datastore=store,
            files={name: archive.file_digest(p) for name, p in members.items()},
            microkube_version=__version__,
        )
        archive.write(dest, manifest, members)
    return BackupResult(dest, int(store.get("total_keys") or 0), dest.stat().st_size,
                        int(store.get("revision") or 0))


def embedded_kind(kind: str) -> str:
    """``kind`` if microkube backs it up (etcd, sqlite); UsageError for an external store."""
    if kind not in settings.EMBEDDED_KINDS:
        raise UsageError(f"this node's datastore is an external {kind}; back it up with that "
                         "database's own tools")
    return kind


@dataclass(frozen=True)
class Member:
    """This node's etcd identity, read from its argument file."""

    name: str
    initial_cluster: str
    peer_urls: str


def member(paths: Paths) -> Member:
    """This node's etcd member, refusing one of a multi-member cluster (UsageError)."""
    from microkube.node.setup import load_context

    argv = load_context(paths).args("etcd")
    name = args.flag_value(argv, "name") or ""
    cluster = args.flag_value(argv, "initial-cluster") or ""
    peers = args.flag_value(argv, "initial-advertise-peer-urls") or ""
    if "," in cluster:
        raise UsageError("this node's etcd is one member of a cluster; restoring one member "
                         "is not supported (restore a single-node cluster, then join the others)")
    if not (name and cluster and peers):
        raise UsageError(f"{paths.args_file('etcd')}: --name, --initial-cluster and "
                         "--initial-advertise-peer-urls are needed for a restore")
    return Member(name, cluster, peers)


def restore(paths: Paths, source: Path, say: Callable[[str], None]) -> archive.Manifest:
    """Replace the stopped node's datastore (and encryption keys) with a backup's.

    Checks in this order, touching nothing until all passed: the node is set up
    and stopped, it is a single etcd member, the file is a sound backup, etcdutl
    rebuilds a data directory from it. Then the old directory is swapped out and
    deleted. Raises UsageError/NotRunningError/MicrokubeError as one line.
    """
    from microkube.node.guard import require_set_up
    from microkube.node.runtime import runtime_for

    require_set_up(paths)
    if runtime_for(paths).is_running():
        raise UsageError("the node is running; stop it first with 'microkube stop', "
                         "then restore, then 'microkube start'")
    from microkube.node.setup import load_context

    kind = embedded_kind(load_context(paths).node.datastore)
    if kind == settings.SQLITE:
        return _restore_sqlite(paths, source, say)
    me = member(paths)
    datastore = paths.datastore_dir
    datastore.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted(datastore)
    with tempfile.TemporaryDirectory(dir=datastore.parent, prefix=".restore-") as tmp:
        work = Path(tmp)
        manifest = _extract(source, work, kind)
        say(f"backup of node {manifest.node.get('name', '?')} taken {manifest.created}: "
            f"{manifest.datastore.get('total_keys', '?')} keys")
        keys = _keys(manifest, work, source)
        fresh = work / "etcd"
        EtcdTools(paths).etcdutl([
            "snapshot", "restore", str(work / archive.SNAPSHOT), "--data-dir", str(fresh),
            "--name", me.name, "--initial-cluster", me.initial_cluster,
            "--initial-advertise-peer-urls", me.peer_urls,
            "--bump-revision", str(BUMP_REVISION), "--mark-compacted",
        ], f"{source}: restoring the snapshot")
        fresh.chmod(0o700)
        old = datastore.with_name(datastore.name + BEFORE_RESTORE)
        if datastore.exists():
            datastore.rename(old)
        fresh.rename(datastore)
        _restore_keys(paths, keys)
        shutil.rmtree(old, ignore_errors=True)
    return manifest


def _extract(source: Path, work: Path, kind: str) -> archive.Manifest:
    """The checked backup's manifest, its members written into ``work``; BackupFileError
    for a backup of another kind of datastore than the node's."""
    manifest = archive.extract(source, work)
    if manifest.datastore.get("kind") != kind:
        raise archive.BackupFileError(f"{source}: the backup is of a {manifest.datastore.get('kind')} "
                                      f"datastore; this node's is {kind}")
    return manifest


def _keys(manifest: archive.Manifest, work: Path, source: Path) -> list[encryption.Key] | None:
    if archive.ENCRYPTION_CONFIG not in manifest.files:
        return None
    cfg = work / archive.ENCRYPTION_CONFIG
    return encryption.parse(cfg.read_text(), f"{source}: {archive.ENCRYPTION_CONFIG}")


def _restore_keys(paths: Paths, keys: list[encryption.Key] | None) -> None:
    if keys is not None:
        encryption.write_keys(paths.encryption_config, keys)
    # A rotation under way belonged to the data just replaced.
    rotation.save_state(paths.encryption_rotation_file, None)


def _restore_sqlite(paths: Paths, source: Path, say: Callable[[str], None]) -> archive.Manifest:
    """Restore a sqlite node: the backup and its database checked, then the file swapped."""
    db = kine.sqlite_file(paths)
    db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=db.parent, prefix=".restore-") as tmp:
        work = Path(tmp)
        manifest = _extract(source, work, settings.SQLITE)
        copy = work / archive.SNAPSHOT
        found = sqlite_backup.facts(copy, str(source))
        say(f"backup of node {manifest.node.get('name', '?')} taken {manifest.created}: "
            f"{found['total_keys']} keys")
        keys = _keys(manifest, work, source)
        sqlite_backup.install(copy, db)
        _restore_keys(paths, keys)
    return manifest


def recover_interrupted(datastore: Path) -> None:
    """Undo what a restore killed between its two renames left: the old data moved aside."""
    old = datastore.with_name(datastore.name + BEFORE_RESTORE)
    if not old.exists():
        return
    if datastore.exists():
        shutil.rmtree(old)  # that restore finished its swap; the aside copy is stale
    else:
        old.rename(datastore)

