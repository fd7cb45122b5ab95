"""What a removed node leaves behind in the network: links and iptables chains.

(The pods' processes, which outlive containerd in the kubelet's cgroup subtree,
are ended by services.cgroups.kill_cgroup_tree.) kube-proxy removes its
own rules (``kube-proxy --cleanup``); the flannel VXLAN device, the CNI bridge,
the chains of flannel, the CNI plugins, the kubelet and the network policy
controller, and that controller's ipsets are removed here.
Only chains with those prefixes are touched: every other rule of the host
stays as it was.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

LINKS = ("flannel.1", "cni0")
# Chains flannel (FLANNEL-*), the CNI plugins (CNI-*: portmap, bridge's masquerade)
# and kube-proxy and the kubelet (KUBE-*) create.
CHAIN_PREFIXES = ("FLANNEL-", "CNI-", "KUBE-")
# The ipsets of the network policy controller (kube-router's KUBE-SRC-*, KUBE-DST-*).
IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-")
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


def remove_chains(save: str = "iptables-save", restore: str = "iptables-restore",
                  prefixes: Iterable[str] = CHAIN_PREFIXES) -> list[str]:
    """Drop the chains named with ``prefixes`` (default: all of ours) from every table that
    has any; returns the tables changed."""
    prefixes = tuple(prefixes)
    if shutil.which(save) is None or shutil.which(restore) is None:
        return []
    changed = []
    for table in ("filter", "nat", "mangle", "raw"):
        dump = _run([save, "-t", table])
        if dump.returncode != 0:
            continue
        cleaned = without_chains(dump.stdout, prefixes)
        if cleaned is not None and _run([restore, "-T", table], stdin=cleaned).returncode == 0:
            changed.append(table)
    return changed


def ipset_names(listing: str, prefixes: Iterable[str] = IPSET_PREFIXES) -> list[str]:
    """The sets named with one of ``prefixes`` in ``ipset list -n`` output (one name a line)."""
    prefixes = tuple(prefixes)
    return [n for n in (line.strip() for line in listing.splitlines()) if n.startswith(prefixes)]


def find_ipset(bin_dir: Path) -> str | None:
    """The ipset to run: the one in ``bin_dir`` (the snap carries its own), else the host's
    on PATH; None when there is neither."""
    return shutil.which("ipset", path=str(bin_dir)) or shutil.which("ipset")


def remove_ipsets(bin_dir: Path, prefixes: Iterable[str] = IPSET_PREFIXES) -> list[str]:
    """Destroy the sets named with ``prefixes``, with the ipset :func:`find_ipset` finds from
    ``bin_dir``; returns their names. A set that a rule still names stays (so remove the
    chains first)."""
    ipset = find_ipset(bin_dir)
    if ipset is None:
        return []
    listing = _run([ipset, "list", "-n"])
    return [name for name in ipset_names(listing.stdout, prefixes)
            if _run([ipset, "destroy", name]).returncode == 0]


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
    return done + [f"ipset {name}" for name in remove_ipsets(kube_proxy.parent)]
