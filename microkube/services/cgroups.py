"""A node's own cgroup subtree, created before the kubelet starts and removed after."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")


def _hierarchies() -> list[Path]:
    if (CGROUP_FS / "cgroup.controllers").exists():
        return [CGROUP_FS]  # v2: one unified tree
    return [p for p in CGROUP_FS.iterdir() if p.is_dir() and not p.is_symlink()]


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
