"""A node's own cgroup subtree: created before the kubelet starts, emptied and removed after."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")


def _hierarchies(cgroup_fs: Path = CGROUP_FS) -> list[Path]:
    if (cgroup_fs / "cgroup.controllers").exists():
        return [cgroup_fs]  # v2: one unified tree
    return [p for p in cgroup_fs.iterdir() if p.is_dir() and not p.is_symlink()]


def ensure_cgroup(root: str) -> None:
    for h in _hierarchies():
        target = h / root.strip("/")
        target.mkdir(parents=True, exist_ok=True)
        if (h / "cpuset.cpus").exists():
            _inherit_cpuset(h, target)


def _inherit_cpuset(hierarchy: Path, target: Path) -> None:
    # A v1 cpuset cgroup with no cpus or mems accepts no task: copy them down.
    chain = [target, *target.parents]
    for d in reversed(chain[: chain.index(hierarchy)]):
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not (d / name).read_text().strip():
                (d / name).write_text((d.parent / name).read_text())


def remove_cgroup(root: str) -> None:
    """Remove the subtree, deepest first; cgroups still holding tasks stay."""
    for h in _hierarchies():
        top = h / root.strip("/")
        if not top.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def cgroup_pids(root: str, cgroup_fs: Path = CGROUP_FS) -> set[int]:
    """Every process in the cgroup subtree ``root``, in any hierarchy (v1) or the one (v2)."""
    pids: set[int] = set()
    for hierarchy in _hierarchies(cgroup_fs):
        top = hierarchy / root.strip("/")
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(line) for line in procs.read_text().split())
    return pids


def kill_cgroup_tree(root: str, timeout: float = 10.0) -> int:
    """SIGKILL every process below ``root`` (the pods' cgroup) by pid until none is left.

    Pods' processes run in the kubelet's cgroups, not in any daemon's, so stopping
    containerd (or its shims) does not end them; this does. Returns how many were killed.
    """
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = cgroup_pids(root) - {os.getpid()}
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.1)
    return len(killed)
