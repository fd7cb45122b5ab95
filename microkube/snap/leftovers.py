"""What a stopped or removed node leaves behind: pods' processes, links, iptables chains.

Pods run in the kubelet's cgroup subtree, outside every daemon app's cgroup,
so they outlive containerd; kill_cgroup_tree ends them. kube-proxy removes its
own rules (``kube-proxy --cleanup``); the flannel VXLAN device, the CNI bridge
and the chains of flannel, the CNI plugins and the kubelet are removed here.
Only chains with those prefixes are touched: every other rule of the host
stays as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

LINKS = ("flannel.1", "cni0")
# Chains flannel (FLANNEL-*), the CNI plugins (CNI-*: portmap, bridge's masquerade)
# and kube-proxy and the kubelet (KUBE-*) create.
CHAIN_PREFIXES = ("FLANNEL-", "CNI-", "KUBE-")
TIMEOUT = 30


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)


def without_chains(dump: str, prefixes: Iterable[str] = CHAIN_PREFIXES) -> str | None:
    """An ``iptables-save`` dump without the given chains and every rule that names them.

    None if nothing in the dump belongs to them, so the table is left untouched.
    """
    prefixes = tuple(prefixes)
    name = "|".join(re.escape(p) for p in prefixes)
    ours = re.compile(rf"(^|\s)(-A|-j|-g|--jump|--goto)\s+({name})")
    kept, dropped = [], False
    for line in dump.splitlines():
        if (line.startswith(":") and line[1:].startswith(prefixes)) or (
                line.startswith("-A ") and ours.search(line)):
            dropped = True
            continue
        kept.append(line)
    return "\n".join(kept) + "\n" if dropped else None


def remove_chains(save: str = "iptables-save", restore: str = "iptables-restore") -> list[str]:
    """Drop our chains from every table that has any; returns the tables changed."""
    if shutil.which(save) is None or shutil.which(restore) is None:
        return []
    changed = []
    for table in ("filter", "nat", "mangle", "raw"):
        dump = _run([save, "-t", table])
        if dump.returncode != 0:
            continue
        cleaned = without_chains(dump.stdout)
        if cleaned is not None and _run([restore, "-T", table], stdin=cleaned).returncode == 0:
            changed.append(table)
    return changed


def remove_links(names: Iterable[str] = LINKS) -> list[str]:
    # Asked of `ip`, not /sys/class/net: /sys may belong to another network namespace.
    if shutil.which("ip") is None:
        return []
    return [name for name in names if _run(["ip", "link", "delete", name]).returncode == 0]


def clean_network(kube_proxy: Path) -> list[str]:
    """Remove the node's links and rules; returns what was removed, for the hook's log."""
    done = []
    if kube_proxy.exists() and _run([str(kube_proxy), "--cleanup"]).returncode == 0:
        done.append("kube-proxy rules")
    done += [f"link {n}" for n in remove_links()]
    for save, restore in (("iptables-save", "iptables-restore"), ("ip6tables-save", "ip6tables-restore")):
        done += [f"{save.split('-')[0]} {t}" for t in remove_chains(save, restore)]
    return done


CGROUP_FS = Path("/sys/fs/cgroup")


def cgroup_pids(root: str, cgroup_fs: Path = CGROUP_FS) -> set[int]:
    """Every process in the cgroup subtree ``root``, in any hierarchy (v1) or the one (v2)."""
    pids: set[int] = set()
    # v2 has one tree at cgroup_fs itself; v1 one per controller below it.
    hierarchies = [cgroup_fs] if (cgroup_fs / "cgroup.controllers").exists() else [
        p for p in cgroup_fs.iterdir() if p.is_dir() and not p.is_symlink()]
    for hierarchy in hierarchies:
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
