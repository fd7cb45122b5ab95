"""A node's idle memory for ``make bench``: every process it runs, by kind, after it settled."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil

from tests.testnode import TestNode

IDLE_SETTLE_SECONDS = 60


def pss_split(pid: int) -> tuple[float, float]:
    """(anonymous, file-backed) PSS of process ``pid`` in MB, from /proc/PID/smaps_rollup.

    File-backed pages are mostly the binary's own code and read-only data: clean, and
    given back by the kernel under memory pressure. Raises OSError if the process is gone.
    """
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0]) / 1024
    return fields.get("Pss_Anon", 0.0), fields.get("Pss_File", 0.0)


def idle_memory(node: TestNode) -> dict[str, Any]:
    """RSS and PSS (anonymous and file-backed) of each of the node's processes, in MB, by
    label, IDLE_SETTLE_SECONDS after the call, with the totals."""
    print(f"  waiting {IDLE_SETTLE_SECONDS} s for the node to settle", flush=True)
    time.sleep(IDLE_SETTLE_SECONDS)
    per: dict[str, dict[str, float]] = {}
    for p in node.processes():
        try:
            name = _label(p)
            mem = p.memory_full_info()
            anon, filed = pss_split(p.pid)
        except (psutil.Error, OSError):
            continue
        entry = per.setdefault(name, {"rss_mb": 0.0, "pss_mb": 0.0, "pss_anon_mb": 0.0,
                                      "pss_file_mb": 0.0, "count": 0})
        entry["rss_mb"] += mem.rss / 2**20
        entry["pss_mb"] += mem.pss / 2**20
        entry["pss_anon_mb"] += anon
        entry["pss_file_mb"] += filed
        entry["count"] += 1
    per = {k: {kk: round(vv, 1) for kk, vv in v.items()} for k, v in sorted(per.items())}
    return {
        "processes": per,
        "total_rss_mb": round(sum(v["rss_mb"] for v in per.values()), 1),
        "total_pss_mb": round(sum(v["pss_mb"] for v in per.values()), 1),
        "total_pss_anon_mb": round(sum(v["pss_anon_mb"] for v in per.values()), 1),
        "total_pss_file_mb": round(sum(v["pss_file_mb"] for v in per.values()), 1),
        # NetworkPolicy enforcement's share when it was a process of its own (before it became
        # a part of kubelite), None if no such process ran.
        "network_policy_pss_mb": per.get("netpol", {}).get("pss_mb"),
    }


def _label(p: psutil.Process) -> str:
    cmd = p.cmdline()
    if cmd[1:3] == ["-m", "microkube.node.supervise"]:
        return "microkube-supervisor"
    if "microkube.cluster.agent" in cmd[1:4]:
        return "microkube-cluster-agent"
    base = Path(cmd[0]).name if cmd else p.name()
    if base == "kube" and cmd[1:2] == ["kubelite"]:
        return "kubelite"
    return (base if base.startswith(("kube", "etcd", "containerd", "flanneld", "netpol", "kine"))
            else "pod:" + base)
