"""Three control planes and a worker on a test LAN, and what losing one of them does: shared by
the e2e test (tests/cluster/ha/test_api_failover.py) and ``make bench`` (tests/bench_cluster.py).

The worker reaches the API through its load balancer (components/apilb), whose state file
names the API server in use; :func:`kill_server_in_use` kills every process of that control
plane (tests/multinode.py's kill_machine, SIGKILL by pid: supervisor, daemons, shims, pods).
"""

from __future__ import annotations

import base64
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from microkube.paths import CHECKOUT
from tests import workloads
from tests.multinode import Cluster, kill_machine, timed_join
from tests.testnode import TestNode, wait_for


@dataclass
class HaCluster:
    lan: Cluster
    planes: list[TestNode]
    worker: TestNode


def balancer_state(worker: TestNode) -> dict[str, Any]:
    """The worker's load balancer's state file ({} while it does not serve)."""
    try:
        return dict(json.loads((worker.root / "common" / "run" / "apilb.json").read_text()))
    except (OSError, ValueError):
        return {}


def voters(node: TestNode) -> list[str]:
    doc = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    ha = doc.get("high-availability") or {}
    return list(ha.get("voters") or []) if ha.get("enabled") else []


def start_ha_cluster(lan: Cluster, names: tuple[str, ...], worker_name: str) -> HaCluster:
    """Start the first control plane, join the other two (three voters) and a worker; return
    once the worker's balancer lists every API server and finds each healthy."""
    planes = [lan.add(name) for name in names]
    worker = lan.add(worker_name)
    planes[0].start()
    for joiner in planes[1:]:
        join = timed_join(joiner, lan.join_string(planes[0]))
        assert join.returncode == 0, join.output
    planes[0].wait_for("three voters", lambda: voters(planes[0]) == sorted(names), timeout=120)
    out = lan.join_worker(worker, lan.join_string(planes[0]))
    assert out.returncode == 0, out.stdout + out.stderr
    every = sorted(f"{p.ip}:16443" for p in planes)
    wait_for("the worker's balancer to know and check every API server",
             lambda: sorted(balancer_state(worker).get("healthy", [])) == every
             and sorted(balancer_state(worker).get("servers", [])) == every, timeout=60,
             every=0.5)
    return HaCluster(lan, planes, worker)


def plane_in_use(ha: HaCluster) -> TestNode:
    """The control plane whose API server the worker's balancer uses now."""
    current = str(balancer_state(ha.worker).get("current", ""))
    return next(p for p in ha.planes if current == f"{p.ip}:16443")


def pod_phase(node: TestNode, name: str) -> str:
    """The pod's phase through ``node``'s API server ("" when it cannot be read)."""
    proc = node.run("kubectl", "get", "pod", name, "-o", "jsonpath={.status.phase}",
                    check=False, timeout=20)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def apply_until_accepted(node: TestNode, manifest: str, timeout: float = 15) -> None:
    """Apply through ``node``, retrying while etcd elects a new leader after a loss."""
    wait_for("the API to accept the pod", lambda: node.run(
        "kubectl", "apply", "-f", "-", input=manifest, check=False, timeout=20).returncode == 0,
        timeout=timeout, every=0.2)


@dataclass
class Failover:
    victim: TestNode
    survivors: list[TestNode]
    killed_at: float  # time.monotonic() when the kill began
    killed_wall: float  # time.time() at the same moment
    switch_s: float  # kill to the balancer using another API server
    pod_running_s: float  # kill to the new pod bound to the worker Running


def kill_server_in_use(ha: HaCluster, pod: str) -> Failover:
    """Kill every process of the control plane the worker's balancer uses, then bind ``pod``
    (a web pod with nodeName = the worker) through a survivor; time the balancer's switch
    and the pod's Running (both bounded by 60 s, so a failure says what was slow)."""
    victim = plane_in_use(ha)
    survivors = [p for p in ha.planes if p is not victim]
    killed_at, killed_wall = time.monotonic(), time.time()
    kill_machine(victim)
    apply_until_accepted(survivors[0], workloads.web_pod(pod, f"{pod} on the worker",
                                                         node=ha.worker.name), timeout=60)
    switched = wait_for("the balancer to leave the dead API server", lambda: (
        (s := balancer_state(ha.worker).get("current")) and s != f"{victim.ip}:16443"
        and time.monotonic()), timeout=60, every=0.1)
    running = wait_for("the new pod Running on the worker", lambda: pod_phase(
        survivors[0], pod) == "Running" and time.monotonic(), timeout=60, every=0.2)
    # The balancer's own record of the switch (wall clock) is finer than this poll's.
    at = float(balancer_state(ha.worker).get("switched_at") or 0.0)
    switch_s = at - killed_wall if at > killed_wall else switched - killed_at
    return Failover(victim, survivors, killed_at, killed_wall, round(switch_s, 2),
                    round(running - killed_at, 2))


# --- API GET latency, direct and through the balancer ---------------------------------------


def get_latency(worker: TestNode, targets: list[str], path: str, runs: int) -> dict[str, Any]:
    """``runs`` GETs of ``path`` with the worker's kubelet credential to each ``host:port`` of
    ``targets``, from the worker's network namespace, one kept-alive connection per target
    (as a client's watches and requests use): {target: {median_ms, p95_ms}}."""
    kubeconfig = worker.root / "data" / "credentials" / "kubelet.config"
    argv = worker.in_netns([sys.executable, "-m", "tests.failover", "latency", str(kubeconfig),
                            path, str(runs), *targets])
    out = subprocess.run(argv, capture_output=True, text=True, cwd=CHECKOUT, timeout=300,
                         check=True)
    return dict(json.loads(out.stdout))


def _measure(kubeconfig: Path, path: str, runs: int, targets: list[str]) -> dict[str, Any]:
    import http.client

    doc = yaml.safe_load(kubeconfig.read_text())
    user = doc["users"][0]["user"]
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "c.crt", Path(tmp) / "c.key"
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        ctx = ssl.create_default_context(cadata=base64.b64decode(
            doc["clusters"][0]["cluster"]["certificate-authority-data"]).decode())
        ctx.load_cert_chain(cert, key)
        result = {}
        for target in targets:
            host, _, port = target.rpartition(":")
            conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET {path} at {target}: HTTP {resp.status}")
                times.append((time.perf_counter() - t) * 1000)
            conn.close()
            times.sort()
            result[target] = {"median_ms": round(statistics.median(times), 2),
                              "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
                              "runs": runs}
        return result


if __name__ == "__main__" and sys.argv[1:2] == ["latency"]:
    print(json.dumps(_measure(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:])))
