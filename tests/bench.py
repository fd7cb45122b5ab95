"""``make bench``: the figures microkube is judged by, printed and written as JSON.

Run as root after ``make components``. Every node is a real one in its own
network namespace (see tests/testnode.py), started cold from an empty root.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests import bench_addons, bench_cluster, bench_power
from tests.bench_addons import addon_bench
from tests.bench_memory import IDLE_SETTLE_SECONDS, idle_memory
from tests.testnode import TestNode, components_built

COLD_STARTS = 5
LATENCY_RUNS = 10
# Issue 11: CLI latency is the median of 20 runs.
CLI_RUNS = 20
PKI_RUNS = 5
# --only: the parts of the single-node figures that can run alone.
PARTS = ("ready", "memory", "latency", "manifests", "sqlite")
# Fresh SQLite nodes timed to Ready; the last one's idle memory is measured.
SQLITE_STARTS = 3


def _node(tag: str, base: Path) -> TestNode:
    return TestNode(name=f"mk-bench-{tag}", root=base / tag / "root", ip="10.214.0.2",
                    netns=f"mk-bench-{os.getpid()}-{tag}")


def drop_page_cache() -> None:
    """Empty the page cache, as after a boot: the first start then reads every binary from disk."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed_start(node: TestNode, config: Path | None = None) -> tuple[dict[str, float], float]:
    """Start ``node`` (its namespace made; with the launch file ``config`` if given) and
    watch it from outside.

    Returns (the start's timeline: event name -> seconds after ``microkube start``,
    tests/bench_timeline.py; seconds until ``start --wait-ready`` returned).
    """
    t0 = time.time()
    watcher = subprocess.Popen(
        node.in_netns([sys.executable, "-m", "tests.bench_timeline", str(t0), "240"]),
        env=node.env, stdout=subprocess.PIPE, text=True)
    try:
        node.start(config=config)
        all_serving = time.time() - t0
        out, _ = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:  # the start failed, or the watcher missed an event
            watcher.kill()
            watcher.wait()
    return json.loads(out or "{}"), all_serving


def time_to_ready(base: Path, starts: int = COLD_STARTS) -> dict[str, Any]:
    """``starts`` starts of fresh nodes (the first after dropping the page cache).

    For each: seconds from ``microkube start`` to the Node's Ready condition (the
    timeline's last event), to ``start --wait-ready`` returning (every daemon serving,
    flannel's subnet included), and the start's timeline.
    """
    ready, waited, timelines = [], [], []
    for i in range(starts):
        node = _node(f"cold{i}", base)
        node.create_netns()
        try:
            if i == 0:
                drop_page_cache()
            timeline, all_serving = timed_start(node)
            timelines.append(timeline)
            waited.append(all_serving)
            ready.append(timeline.get("Node Ready", all_serving))
            print(f"  cold start {i + 1}{' (page cache dropped)' if i == 0 else ''}: "
                  f"Node Ready in {ready[-1]:.1f} s, every daemon serving in {waited[-1]:.1f} s",
                  flush=True)
        finally:
            node.destroy()
    return {"runs_s": [round(t, 2) for t in ready],
            "median_s": round(statistics.median(ready), 2), "max_s": round(max(ready), 2),
            "first_after_drop_s": round(ready[0], 2),
            "all_serving_runs_s": [round(t, 2) for t in waited],
            "all_serving_median_s": round(statistics.median(waited), 2),
            "timelines": timelines}


def single_node_figures(base: Path, parts: set[str], quick: bool,
                        results: dict[str, Any]) -> None:
    """Start one etcd node under ``base`` and add the figures of ``parts`` (memory, latency,
    manifests; with not ``quick`` the addons and the datastore's too) to ``results``."""
    node = _node("idle", base)
    node.create_netns()
    try:
        node.start()
        if "memory" in parts:
            print("idle memory:", flush=True)
            results["idle_memory"] = idle_memory(node)
        if "latency" in parts:
            print("CLI latency:", flush=True)
            results.update(latency_figures(node, base))
        if "manifests" in parts:
            print("deploy folder:", flush=True)
            results["manifest_to_object"] = manifest_figures(node)
        if not quick:
            print("addons:", flush=True)
            results["addons"] = addon_bench(node)
            print("datastore backup and restore:", flush=True)
            results["datastore"] = datastore_figures(node, base)  # last: it stops the node
    finally:
        node.destroy()


def sqlite_figures(base: Path, starts: int = SQLITE_STARTS) -> dict[str, Any]:
    """Nodes on SQLite (kine), beside the etcd figures (issue 13): seconds from ``microkube
    start`` to Node Ready of ``starts`` fresh nodes (warm caches) as ``runs_s``, their
    median, and the idle memory of the last one (bench_memory.idle_memory's shape)."""
    launch = base / "sqlite.yaml"
    launch.write_text('version: "0.1.0"\ndatastore: sqlite\n')
    ready: list[float] = []
    memory: dict[str, Any] = {}
    for i in range(starts):
        node = _node(f"sqlite{i}", base)
        node.create_netns()
        try:
            timeline, all_serving = timed_start(node, config=launch)
            ready.append(timeline.get("Node Ready", all_serving))
            print(f"  SQLite start {i + 1}: Node Ready in {ready[-1]:.1f} s", flush=True)
            if i == starts - 1:
                memory = idle_memory(node)
        finally:
            node.destroy()
    return {"runs_s": [round(t, 2) for t in ready],
            "median_s": round(statistics.median(ready), 2), "idle_memory": memory}


def bytecode_env(node: TestNode, cache: Path) -> dict[str, str]:
    """The node's environment with Python's bytecode cache on, kept in ``cache``: the snap
    ships microkube compiled, and a shell with PYTHONDONTWRITEBYTECODE set would otherwise
    time the compiling of every module on every run."""
    env = {k: v for k, v in node.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(cache)}


def latency(node: TestNode, *args: str, env: dict[str, str] | None = None,
            runs: int = CLI_RUNS) -> dict[str, Any]:
    """Milliseconds ``microkube ARGS`` takes from a shell in the node's namespace (median and
    max of ``runs``, after one run that is not counted), with ``env`` (default: the node's)."""
    argv = node.in_netns([*node.cli, *args])
    env = env or node.env
    subprocess.run(argv, env=env, capture_output=True, timeout=60)
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        times.append(time.monotonic() - t0)
        if proc.returncode != 0:
            raise AssertionError(f"microkube {' '.join(args)} exited {proc.returncode}: "
                                 f"{proc.stderr}")
    return {"median_ms": round(statistics.median(times) * 1000), "max_ms": round(max(times) * 1000)}


def latency_figures(node: TestNode, base: Path) -> dict[str, Any]:
    """``status`` and ``kubectl get pods`` latency, each with the bytecode cache on (as the
    snap runs) and with the caller's environment as it is (``*_as_run``)."""
    compiled = bytecode_env(node, base / "pycache")
    return {"status_latency": latency(node, "status", env=compiled),
            "kubectl_get_pods_latency": latency(node, "kubectl", "get", "pods", env=compiled),
            "status_latency_as_run": latency(node, "status"),
            "kubectl_get_pods_latency_as_run": latency(node, "kubectl", "get", "pods")}


def manifest_figures(node: TestNode, runs: int = LATENCY_RUNS) -> dict[str, Any]:
    """Seconds from a manifest file written in the deploy folder until its object exists
    (``runs`` files, one after another, timed from inside the node's namespace)."""
    out = subprocess.run(node.in_netns([sys.executable, "-m", "tests.bench_manifests", str(runs)]),
                         env=node.env, capture_output=True, text=True, timeout=60 * runs,
                         check=True).stdout
    times = json.loads(out)
    return {"median_s": round(statistics.median(times), 2), "max_s": round(max(times), 2),
            "runs_s": [round(t, 2) for t in times]}


def datastore_figures(node: TestNode, base: Path) -> dict[str, Any]:
    """Seconds ``dbctl backup`` takes on the running node (median of LATENCY_RUNS), the
    backup's size, and seconds ``dbctl restore`` takes once the node is stopped (it is
    left stopped)."""
    backup = base / "bench-backup.tar.gz"
    times = []
    for _ in range(LATENCY_RUNS):
        t0 = time.monotonic()
        node.run("dbctl", "backup", "-o", str(backup))
        times.append(time.monotonic() - t0)
    node.stop()
    t0 = time.monotonic()
    node.run("dbctl", "restore", str(backup))
    restore_s = time.monotonic() - t0
    return {"backup_median_s": round(statistics.median(times), 2),
            "backup_bytes": backup.stat().st_size, "restore_s": round(restore_s, 2)}


def pki_figures(runs: int = PKI_RUNS) -> dict[str, Any]:
    """Seconds ensure_node_pki takes for a fresh node (every CA, leaf and kubeconfig made) and
    again on the same files (nothing to do): median and max of ``runs`` runs each."""
    from microkube.pki.node import ensure_node_pki

    fresh: list[float] = []
    again: list[float] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="mk-bench-pki-") as tmp:
            for times in (fresh, again):
                t0 = time.perf_counter()
                ensure_node_pki(Path(tmp) / "certs", Path(tmp) / "credentials", "bench-node",
                                ["192.0.2.10", "2001:db8::10"], "bench-host", "10.152.183.0/24",
                                "cluster.local", "https://127.0.0.1:16443")
                times.append(time.perf_counter() - t0)
    return {name: {"median_s": round(statistics.median(t), 4), "max_s": round(max(t), 4)}
            for name, t in (("fresh", fresh), ("again", again))}


def component_figures() -> dict[str, Any]:
    from microkube.components.bench import bench

    return dict(bench())


def snap_figures() -> dict[str, Any]:
    from microkube.snap.bench import snap_bench

    return dict(snap_bench())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, default=Path("bench.json"))
    ap.add_argument("--quick", action="store_true",
                    help="only time to Ready, idle memory, CLI latency, the deploy folder and a "
                         "SQLite node (no addons, cluster, components, snap or PKI figures)")
    ap.add_argument("--only", type=lambda v: v.split(","), default=None,
                    metavar=",".join(PARTS),
                    help="only these single-node figures, on one node (implies --quick)")
    ap.add_argument("--starts", type=int, default=COLD_STARTS,
                    help=f"cold starts to time (default {COLD_STARTS})")
    opts = ap.parse_args()
    if opts.only is not None:
        unknown = sorted(set(opts.only) - set(PARTS))
        if unknown:
            ap.error(f"--only: unknown part '{unknown[0]}' (one of {', '.join(PARTS)})")
        opts.quick = True
    parts = set(opts.only or PARTS)
    if os.geteuid() != 0 or not components_built():
        print("bench needs root and built components ('make components')", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    if parts == {"ready"}:  # no idle node to start
        with tempfile.TemporaryDirectory(prefix="mk-bench-") as tmp:
            print("time to Ready (cold starts):", flush=True)
            results["time_to_ready"] = time_to_ready(Path(tmp), opts.starts)
        opts.json.write_text(json.dumps(results, indent=1) + "\n")
        print(render(results))
        return 0
    if not opts.quick:
        results.update({"components": component_figures(), "snap": snap_figures()})
        print("PKI generation:", flush=True)
        results["pki"] = pki_figures()
    with tempfile.TemporaryDirectory(prefix="mk-bench-") as tmp:
        base = Path(tmp)
        if "ready" in parts:
            print("time to Ready (cold starts):", flush=True)
            results["time_to_ready"] = time_to_ready(base, opts.starts)
        if parts & {"memory", "latency", "manifests"} or not opts.quick:
            single_node_figures(base, parts, opts.quick, results)
    if "sqlite" in parts:
        with tempfile.TemporaryDirectory(prefix="mk-bench-sqlite-") as tmp:
            print("a node on SQLite:", flush=True)
            results["sqlite"] = sqlite_figures(Path(tmp))
    if not opts.quick:
        with tempfile.TemporaryDirectory(prefix="mk-bench-cluster-") as tmp:
            print("control-plane joins:", flush=True)
            results["control_plane_join"] = bench_cluster.control_plane_join_figures(
                Path(tmp) / "cp")
            print("worker join and idle memory:", flush=True)
            results["worker_join"] = bench_cluster.worker_join_figures(Path(tmp) / "worker")
            print("worker API load balancer and failover:", flush=True)
            results["api_failover"] = bench_cluster.api_failover_figures(Path(tmp) / "failover")
            print("power loss (single node, then three control planes):", flush=True)
            results["power_loss"] = bench_power.figures(Path(tmp) / "power")
    opts.json.write_text(json.dumps(results, indent=1) + "\n")
    print(render(results))
    print(f"(JSON in {opts.json})")
    return 0


# The figures before kubelite (one process per Kubernetes daemon), as recorded in issue 11:
# a fresh machine, a node in a network namespace of its own.
BEFORE = {"ready_median_s": 6.5, "ready_first_s": 11.1, "idle_pss_mb": 506.0,
          "status_ms": 170, "kubectl_get_pods_ms": 220}
# Published figures on a Raspberry Pi 5, as issue 11 records them (not measured here).
ANCHORS = "k3s 25-40 s / 430-520 MB; MicroK8s 45-70 s / 620-760 MB (Raspberry Pi 5, published)"


def median_timeline(timelines: list[dict[str, float]]) -> dict[str, float]:
    """Each event's median time (s after ``microkube start``) over the starts that saw it."""
    events = {e for t in timelines for e in t}
    return {e: round(statistics.median(t[e] for t in timelines if e in t), 2) for e in events}


def render_timeline(timeline: dict[str, float]) -> list[str]:
    """One start's events, each with the seconds since ``microkube start`` and since the last."""
    out, last = [], 0.0
    for event, at in sorted(timeline.items(), key=lambda e: e[1]):
        out.append(f"  {at:>6.2f} s  (+{at - last:.2f})  {event}")
        last = at
    return out


def render_memory(what: str, mem: dict[str, Any], against: str) -> list[str]:
    """Lines for bench_memory.idle_memory's figures of a node (``what`` it ran), with the
    target and former figures ``against``."""
    out = [f"idle memory {IDLE_SETTLE_SECONDS} s after Ready, {what}: RSS "
           f"{mem.get('total_rss_mb')} MB, PSS {mem.get('total_pss_mb')} MB "
           f"(anonymous {mem.get('total_pss_anon_mb')} MB, file-backed "
           f"{mem.get('total_pss_file_mb')} MB; {against})"]
    if mem.get("network_policy_pss_mb") is not None:  # a netpol process of its own
        out.append(f"  of which NetworkPolicy enforcement (netpol): PSS "
                   f"{mem.get('network_policy_pss_mb')} MB")
    for name, v in mem.get("processes", {}).items():
        out.append(f"  {name:<28} RSS {v['rss_mb']:>7.1f} MB  PSS {v['pss_mb']:>7.1f} MB "
                   f"(anon {v.get('pss_anon_mb', 0):>6.1f}, file {v.get('pss_file_mb', 0):>6.1f})"
                   f"  x{int(v['count'])}")
    return out


def render(r: dict[str, Any]) -> str:
    out = ["", "== microkube bench =="]
    ttr = r.get("time_to_ready", {})
    if ttr:
        starts = len(ttr.get("runs_s") or [])
        out.append(f"time to Node Ready, {starts} cold starts: median {ttr.get('median_s')} s, "
                   f"max {ttr.get('max_s')} s (runs: {ttr.get('runs_s')}; target median <= 5 s; "
                   f"before: median {BEFORE['ready_median_s']} s)")
        out.append(f"time until every daemon serves (start --wait-ready returns, flannel's "
                   f"subnet written): median {ttr.get('all_serving_median_s')} s "
                   f"(runs: {ttr.get('all_serving_runs_s')})")
        out.append(f"Node Ready, first start after dropping the page cache: "
                   f"{ttr.get('first_after_drop_s')} s "
                   f"(target <= 8 s; before: {BEFORE['ready_first_s']} s after a boot)")
        timelines = ttr.get("timelines") or []
        if len(timelines) > 1:
            out.append("timeline of a start (the second, warm caches):")
            out += render_timeline(timelines[1])
            out.append(f"timeline, median of the {len(timelines) - 1} warm starts:")
            out += render_timeline(median_timeline(timelines[1:]))
    mem = r.get("idle_memory", {})
    if mem:
        out += render_memory("no addons", mem, "target <= 300 MB, goal 250 MB; before: PSS "
                                              f"{BEFORE['idle_pss_mb']} MB")
    lite = r.get("sqlite", {})
    if lite:
        out.append(f"a node on SQLite (kine), {len(lite['runs_s'])} fresh starts: Node Ready "
                   f"median {lite['median_s']} s (runs: {lite['runs_s']}; etcd above)")
        out += render_memory("SQLite, no addons", lite["idle_memory"], "target <= 200 MB")
    pki = r.get("pki", {})
    if pki:
        out.append(f"PKI generation, median of {PKI_RUNS}: fresh node {pki['fresh']['median_s']} s "
                   f"(max {pki['fresh']['max_s']} s), again with nothing to do "
                   f"{pki['again']['median_s']} s (max {pki['again']['max_s']} s)")
    for key in ("status_latency", "kubectl_get_pods_latency"):
        v, as_run = r.get(key, {}), r.get(f"{key}_as_run", {})
        if not v:
            continue
        before = BEFORE["status_ms" if key.startswith("status") else "kubectl_get_pods_ms"]
        line = (f"{key.replace('_', ' ')}: median {v.get('median_ms')} ms, max {v.get('max_ms')} ms "
                f"({CLI_RUNS} runs, bytecode cached; target <= 150 ms; before: {before} ms)")
        if as_run:
            line += (f"; with the caller's environment as it is: median {as_run['median_ms']} ms, "
                     f"max {as_run['max_ms']} ms")
        out.append(line)
    mf = r.get("manifest_to_object", {})
    if mf:
        out.append(f"deploy folder: a manifest file written until its object exists: median "
                   f"{mf['median_s']} s, max {mf['max_s']} s (runs: {mf['runs_s']}; bound 5 s)")
    if r.get("addons"):
        out.append(bench_addons.render(r["addons"]))
    ds = r.get("datastore", {})
    if ds:
        out.append(f"dbctl backup (running node): median {ds['backup_median_s']} s, "
                   f"{ds['backup_bytes'] / 2**20:.1f} MiB; dbctl restore (stopped node): "
                   f"{ds['restore_s']} s")
    comp = r.get("components", {})
    if comp:
        out.append("components: " + json.dumps(comp)[:3000])
    if r.get("snap"):
        out.append("snap: " + json.dumps(r["snap"]))
    if r.get("control_plane_join"):
        out.append(bench_cluster.render(r["control_plane_join"]))
    if r.get("worker_join"):
        out.append(bench_cluster.render_worker(r["worker_join"]))
    if r.get("api_failover"):
        out.append(bench_cluster.render_failover(r["api_failover"]))
    if r.get("power_loss"):
        out.append(bench_power.render(r["power_loss"]))
    out.append(f"anchors: {ANCHORS}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
