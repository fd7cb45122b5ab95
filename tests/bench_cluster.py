"""``make bench``'s cluster figures on real nodes on a test LAN (tests/multinode.py): a control
plane's ``join`` to Node Ready, the third control plane's ``join`` to three etcd voters, a
worker's ``join`` to Node Ready and its idle memory, and what a worker's API load balancer
adds and how fast it fails over (three control planes and a worker, tests/failover.py).

Run alone: ``sudo .venv/bin/python -m tests.bench_cluster [--worker | --failover]`` (after
``make components``; ``--worker``: only the worker's figures; ``--failover``: only the load
balancer's).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.bench_memory import IDLE_SETTLE_SECONDS, idle_memory
from tests.failover import balancer_state, get_latency, kill_server_in_use, start_ha_cluster
from tests.multinode import cluster, timed_join

NAMES = ("mk-bench-cp1", "mk-bench-cp2", "mk-bench-cp3")
WORKER_NAMES = ("mk-bench-wcp", "mk-bench-w1")
FAILOVER_NAMES = ("mk-bench-ha1", "mk-bench-ha2", "mk-bench-ha3")
FAILOVER_WORKER = "mk-bench-haw"
API_GETS = 200


def control_plane_join_figures(base: Path) -> dict[str, Any]:
    """Start one node, join two control planes to it; seconds from each ``join`` to its
    Node Ready, and from the third's ``join`` to three voters (high availability)."""
    with cluster(base) as lan:
        nodes = [lan.add(name) for name in NAMES]
        nodes[0].start()
        figures: dict[str, Any] = {}
        for key, joiner in (("second", nodes[1]), ("third", nodes[2])):
            join = timed_join(joiner, lan.join_string(nodes[0]))
            if join.returncode != 0:
                raise RuntimeError(f"{joiner.name}'s join failed:\n{join.output}")
            figures[f"{key}_join_to_ready_s"] = round(join.at("is Ready") or -1, 1)
            figures[f"{key}_join_total_s"] = round(join.seconds, 1)
        figures["third_join_to_three_voters_s"] = round(
            join.at("high availability: yes") or -1, 1)
        return figures


def worker_join_figures(base: Path) -> dict[str, Any]:
    """Start one control plane and join a worker to it: seconds from ``join --worker`` to its
    Node Ready and to the join's end, and the worker's idle memory (every microkube process
    on it, ``IDLE_SETTLE_SECONDS`` after Ready; see tests/bench_memory.py)."""
    with cluster(base) as lan:
        cp, worker = (lan.add(name) for name in WORKER_NAMES)
        cp.start()
        join = timed_join(worker, lan.join_string(cp), "--worker")
        if join.returncode != 0:
            raise RuntimeError(f"the worker's join failed:\n{join.output}")
        return {"join_to_ready_s": round(join.at("is Ready") or -1, 1),
                "join_total_s": round(join.seconds, 1), "idle_memory": idle_memory(worker)}


def api_failover_figures(base: Path) -> dict[str, Any]:
    """Three control planes and a worker. From the worker, ``API_GETS`` GETs of its own Node
    straight to the API server its balancer uses and through the balancer (127.0.0.1), in
    one run, one kept-alive connection each (median and p95 ms); then every process of that
    control plane is killed, and the seconds until the balancer uses another API server and
    until a new pod bound to the worker is Running."""
    with cluster(base) as lan:
        ha = start_ha_cluster(lan, FAILOVER_NAMES, FAILOVER_WORKER)
        direct = str(balancer_state(ha.worker)["current"])
        through = "127.0.0.1:16443"
        gets = get_latency(ha.worker, [direct, through], f"/api/v1/nodes/{FAILOVER_WORKER}",
                           API_GETS)
        loss = kill_server_in_use(ha, "bench-failover")
        return {"gets": API_GETS, "direct": gets[direct], "through_balancer": gets[through],
                "balancer_switch_s": loss.switch_s,
                "kill_to_pod_running_s": loss.pod_running_s}


def render_failover(figures: dict[str, Any]) -> str:
    """Lines for the bench report: the load balancer's cost, and its failover."""
    d, b = figures["direct"], figures["through_balancer"]
    return (f"worker API load balancer: {figures['gets']} GETs direct median {d['median_ms']} ms "
            f"(p95 {d['p95_ms']} ms), through it median {b['median_ms']} ms (p95 "
            f"{b['p95_ms']} ms)\n"
            f"failover: control plane killed to a new pod Running on the worker "
            f"{figures['kill_to_pod_running_s']} s (target <= 15 s); the balancer switched "
            f"after {figures['balancer_switch_s']} s (target <= 5 s)")


def render_worker(figures: dict[str, Any]) -> str:
    """Lines for the bench report: the worker's join and its idle memory by process."""
    mem = figures["idle_memory"]
    out = [f"worker join to Node Ready: {figures['join_to_ready_s']} s (target <= 15 s; the "
           f"join returned after {figures['join_total_s']} s); worker idle "
           f"{IDLE_SETTLE_SECONDS} s after Ready: PSS {mem['total_pss_mb']} MB, RSS "
           f"{mem['total_rss_mb']} MB (target <= 180 MB, goal 120 MB)"]
    for name, v in mem["processes"].items():
        out.append(f"  {name:<28} RSS {v['rss_mb']:>7.1f} MB  PSS {v['pss_mb']:>7.1f} MB  "
                   f"x{int(v['count'])}")
    return "\n".join(out)


def render(figures: dict[str, Any]) -> str:
    """One line for the bench report."""
    return (f"control plane join to Node Ready: {figures['second_join_to_ready_s']} s "
            f"(second), {figures['third_join_to_ready_s']} s (third) (target <= 30 s); "
            f"third control plane's join to three voters: "
            f"{figures['third_join_to_three_voters_s']} s")


def main() -> int:
    """Every bench, or only the worker's with ``--worker``, only the load balancer's with
    ``--failover``; the figures as JSON and lines."""
    only = {"--worker": "worker_join", "--failover": "api_failover"}
    chosen = [only[a] for a in sys.argv[1:] if a in only] or [
        "control_plane_join", "worker_join", "api_failover"]
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mk-bench-cluster-") as tmp:
        if "control_plane_join" in chosen:
            figures["control_plane_join"] = control_plane_join_figures(Path(tmp) / "cp")
        if "worker_join" in chosen:
            figures["worker_join"] = worker_join_figures(Path(tmp) / "worker")
        if "api_failover" in chosen:
            figures["api_failover"] = api_failover_figures(Path(tmp) / "failover")
    print(json.dumps(figures, indent=1))
    if "control_plane_join" in figures:
        print(render(figures["control_plane_join"]))
    if "worker_join" in figures:
        print(render_worker(figures["worker_join"]))
    if "api_failover" in figures:
        print(render_failover(figures["api_failover"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
