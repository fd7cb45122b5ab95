"""What survives a power loss: etcd runs with its fsyncs on, and microkube's own files are
written atomically (a temporary file synced, renamed, its directory synced)."""

from __future__ import annotations

import re
from pathlib import Path

from microkube import fsutil
from microkube.paths import CHECKOUT

PACKAGE = CHECKOUT / "microkube"
# etcd's flags that trade durability or safety away (etcd server/embed/config.go): every
# "unsafe" one (--unsafe-no-fsync skips the WAL's and the backend's fsync), and
# --force-new-cluster, which drops the other members at each start.
UNSAFE = re.compile(r"unsafe|--force-new-cluster")
# Files that are not state: kernel control files, and scratch files in a temporary directory.
NOT_STATE = {PACKAGE / "services" / "cgroups.py", PACKAGE / "manifests" / "helm.py",
             PACKAGE / "fsutil.py"}


def test_etcd_runs_with_no_flag_that_skips_fsync_or_rewrites_the_cluster() -> None:
    lines = [line.strip() for line in (PACKAGE / "config" / "default_args" / "etcd")
             .read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert any(line.startswith("--data-dir=") for line in lines)
    assert not [line for line in lines if UNSAFE.search(line)]


def test_the_etcd_flags_a_node_runs_with_are_checked_too(tmp_path: Path) -> None:
    from microkube.services.base import NodeContext
    from microkube.services.etcd import Etcd
    from tests.clusternode import prepare_node_root

    ctx = NodeContext.load(prepare_node_root(tmp_path / "root"))
    flags = Etcd().command(ctx)
    assert "--data-dir=" + str(ctx.paths.datastore_dir) in flags
    assert not [f for f in flags if UNSAFE.search(f)]


def test_microkube_writes_its_own_files_only_through_write_atomic() -> None:
    offenders = []
    for source in sorted(PACKAGE.rglob("*.py")):
        if source in NOT_STATE:
            continue
        for n, line in enumerate(source.read_text().splitlines(), 1):
            if re.search(r"\.write_(text|bytes)\(|open\([^)]*['\"][wx]b?['\"]", line):
                offenders.append(f"{source.relative_to(CHECKOUT)}:{n}: {line.strip()}")
    # A lock file opened for writing holds no data; archives are written to a temporary
    # name and renamed (datastore/archive.py), inspect reports are new files.
    allowed = ("snap_daemon.py", "inspect.py", "archive.py", "oci.py")
    assert [o for o in offenders if not o.split(":")[0].endswith(allowed)] == []


def test_write_atomic_leaves_the_old_or_the_new_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state" / "members.json"
    fsutil.write_atomic(target, "old")
    fsutil.write_atomic(target, "new", mode=0o600)
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["members.json"]
