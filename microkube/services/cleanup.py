"""Clean up what a node leaves behind: mounts below its root, stale processes.

Everything here is scoped to one node's own directories, so a test node
never touches the host's other mounts or processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

import psutil

MNT_DETACH = 2


def mounts_below(root: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> list[Path]:
    """Mount points at or below ``root``, deepest first."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    found = []
    for line in mountinfo.read_text().splitlines():
        point = _unescape(line.split()[4])
        if (point + "/").startswith(prefix):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return field.encode().decode("unicode_escape")


def unmount_below(root: Path) -> list[Path]:
    """Lazily unmount everything below ``root``; returns what was unmounted."""
    if not root.exists():
        return []
    libc = ctypes.CDLL(None, use_errno=True)
    done = []
    for point in mounts_below(root):
        if libc.umount2(str(point).encode(), MNT_DETACH) == 0:
            done.append(point)
    return done


def node_processes(bin_dir: Path, markers: list[str]) -> list[psutil.Process]:
    """Processes run from ``bin_dir`` whose arguments name one of ``markers``.

    The markers are directories unique to one node, so this finds that
    node's daemons and containerd shims and nothing else on the host.
    """
    prefix = str(bin_dir) + "/"
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if (proc.pid != os.getpid() and cmdline and cmdline[0].startswith(prefix)
                and any(m in part for part in cmdline[1:] for m in markers)):
            found.append(proc)
    return found


def kill_processes(procs: list[psutil.Process], timeout: float = 5.0) -> None:
    """SIGKILL the given processes (by pid) and wait for them to go."""
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=timeout)


def wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) for p in pids):
            return True
        time.sleep(0.1)
    return False
