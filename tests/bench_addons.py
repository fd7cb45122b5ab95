"""Addon figures for ``make bench``: how soon an addon works after enable, and what it costs.

Each function takes a running TestNode (see tests/testnode.py) and leaves it as
it found it (the addon disabled again). ``addon_bench(node)`` runs them all:

* dns: from ``enable dns`` until a Service name and an upstream name resolve
  through the cluster DNS address (the upstream is a resolver this bench runs);
* ingress: from ``enable ingress`` until HTTP through it reaches a Service;
* metallb: from ``enable metallb:RANGE`` until a LoadBalancer Service answers a host on
  the node's link (a node and a client of its own on a test bridge: the client reaches
  the address only through the speaker's ARP reply);
* every addon: the wall time of ``enable``, until it works, the memory (RSS, PSS)
  the node's processes grew by once it settled, and the wall time of ``enable``
  again once it is enabled (which has nothing to do).

Run alone: ``python -m tests.bench_addons`` (root, built components).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from microkube.images.names import BUSYBOX_IMAGE
from tests.testnode import TestNode, components_built
from tests.workloads import web_deployment

GOAL_SECONDS = 10.0
SETTLE_SECONDS = 10.0
DNS_IP = "10.152.183.10"

BACKEND = web_deployment("bench-web", "bench") + f"""
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: bench-web}}
spec:
  rules:
  - host: bench.example.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: bench-web, port: {{number: 80}}}}}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: bench-client}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: client, image: {BUSYBOX_IMAGE}, imagePullPolicy: Never, command: [sleep, "100000"]}}
"""


def node_memory(node: TestNode) -> dict[str, float]:
    """RSS and PSS (MiB) of every process of the node, pods included."""
    rss = pss = 0.0
    for p in node.processes():
        try:
            mem = p.memory_full_info()
        except psutil.Error:
            continue
        rss += mem.rss / 2**20
        pss += mem.pss / 2**20
    return {"rss_mb": round(rss, 1), "pss_mb": round(pss, 1)}


def _timed_until(what: str, check: Callable[[], bool], t0: float, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return round(time.monotonic() - t0, 2)
        except (AssertionError, OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def _prepare_backend(node: TestNode) -> None:
    node.apply(BACKEND)
    node.kubectl("rollout", "status", "deployment/bench-web", "--timeout=120s", timeout=150)
    node.kubectl("wait", "--for=condition=Ready", "pod/bench-client", "--timeout=120s", timeout=150)


def _enable_measured(node: TestNode, addon_args: list[str], works: Callable[[], bool],
                     what: str) -> dict[str, Any]:
    before = node_memory(node)
    t0 = time.monotonic()
    out = node.run("enable", *addon_args).stdout
    enable_s = round(time.monotonic() - t0, 2)
    working_s = _timed_until(what, works, t0)
    time.sleep(SETTLE_SECONDS)
    after = node_memory(node)
    reenable_s = _reenable(node, addon_args[0].partition(":")[0])
    return {
        "enable_command_s": enable_s,
        "working_after_s": working_s,
        "reenable_s": reenable_s,
        "within_goal": working_s <= GOAL_SECONDS,
        "memory_added_mb": {k: round(after[k] - before[k], 1) for k in after},
        "output": out.strip().splitlines()[:3],
    }


def _reenable(node: TestNode, addon: str) -> float:
    """Seconds `enable ADDON` takes on an addon that is already enabled (it must say so)."""
    t0 = time.monotonic()
    out = node.run("enable", addon).stdout
    took = round(time.monotonic() - t0, 2)
    if f"{addon} is already enabled" not in out:
        raise AssertionError(f"enable {addon} again did not find it enabled: {out.strip()}")
    return took


def bench_dns(node: TestNode) -> dict[str, Any]:
    """From 'enable dns' until a Service name and an upstream name resolve."""
    from tests.e2e.addon_support import DnsResponder

    _prepare_backend(node)

    def resolves() -> bool:
        svc = node.run("kubectl", "exec", "bench-client", "--", "nslookup",
                       "bench-web.default.svc.cluster.local", DNS_IP, check=False, timeout=10)
        ext = node.run("kubectl", "exec", "bench-client", "--", "nslookup",
                       "upstream.bench.test", DNS_IP, check=False, timeout=10)
        return svc.returncode == 0 and "192.0.2.99" in ext.stdout

    with DnsResponder(node, {"upstream.bench.test": "192.0.2.99"}):
        result = _enable_measured(node, ["dns", "--upstream", node.ip], resolves,
                                  "names resolving through the cluster DNS")
    node.run("disable", "dns")
    return result


def bench_ingress(node: TestNode) -> dict[str, Any]:
    """From 'enable ingress' until HTTP through it reaches a Service."""
    from tests.e2e.addon_support import http_get

    _prepare_backend(node)

    def routes() -> bool:
        status, body = http_get(node, f"http://{node.ip}/", host="bench.example.test", timeout=2)
        return status == 200 and "bench" in body

    result = _enable_measured(node, ["ingress"], routes, "HTTP through the ingress")
    node.run("disable", "ingress")
    return result


def _lb_address(node: TestNode, service: str) -> str:
    svc = node.kubectl_json("get", "service", service)
    ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}]
    return str(ingress[0].get("ip", ""))


def bench_metallb() -> dict[str, Any]:
    """From 'enable metallb:RANGE' until a LoadBalancer Service answers a client on the link.

    Runs on a node of its own on a test bridge (with a client host beside it), started
    and destroyed here, since the shared bench node has no link another host can share.
    """
    from tests.lanhost import LanHost
    from tests.multinode import SUBNET, Cluster

    tag = f"mlb{os.getpid()}"
    web = web_deployment("bench-lb", "bench-lb", service_type="LoadBalancer")
    with tempfile.TemporaryDirectory(prefix="mk-bench-metallb-") as tmp:
        cluster = Cluster(Path(tmp), tag=tag)
        client: LanHost | None = None
        try:
            cluster.create()
            node = cluster.add(f"mk-bench-lb-{os.getpid()}")
            client = LanHost(f"mk-benchlbc-{tag}", f"{SUBNET}.50", cluster.bridge_ns, f"pc-{tag}")
            node.start()
            node.apply(web)
            node.kubectl("rollout", "status", "deployment/bench-lb", "--timeout=120s", timeout=150)
            host = client

            def answers() -> bool:
                ip = _lb_address(node, "bench-lb")
                return bool(ip) and host.get(f"http://{ip}/", timeout=1) == "bench-lb"

            result = _enable_measured(node, [f"metallb:{SUBNET}.200-{SUBNET}.203"], answers,
                                      "a LoadBalancer Service answering on the link")
            t0 = time.monotonic()
            node.run("disable", "metallb")
            result["disable_s"] = round(time.monotonic() - t0, 2)
            return result
        finally:
            if client is not None:
                client.delete()
            cluster.destroy()


def bench_generic(node: TestNode, addon: str, works: Callable[[], bool] | None = None,
                  disable_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """enable (wall time, ends when the addon reports ready) and the memory it adds."""
    check = works or (lambda: True)
    result = _enable_measured(node, [addon], check, f"{addon} working")
    node.run("disable", addon, *disable_args)
    return result


def bench_metrics_server(node: TestNode) -> dict[str, Any]:
    def top() -> bool:
        out = node.run("kubectl", "top", "nodes", check=False, timeout=20).stdout
        return node.name in out

    return bench_generic(node, "metrics-server", top)


def addon_bench(node: TestNode) -> dict[str, Any]:
    """Every addon's figures on ``node`` (a running node; it is left without addons)."""
    results: dict[str, Any] = {}
    results["dns"] = bench_dns(node)
    results["ingress"] = bench_ingress(node)
    results["metrics-server"] = bench_metrics_server(node)
    results["dashboard"] = bench_generic(node, "dashboard")
    # registry needs storage: measure storage alone, then registry on top of it.
    results["hostpath-storage"] = _enable_measured(node, ["hostpath-storage"], lambda: True,
                                                   "hostpath-storage")
    results["registry"] = bench_generic(node, "registry")
    node.run("disable", "hostpath-storage", "--destroy-storage")
    node.kubectl("delete", "deployment/bench-web", "service/bench-web", "ingress/bench-web",
                 "pod/bench-client", "--ignore-not-found", "--wait=true", timeout=120)
    results["metallb"] = bench_metallb()
    return results


def render(results: dict[str, Any]) -> str:
    lines = [f"addons (goal: working within {GOAL_SECONDS:.0f} s of enable):"]
    for name, r in results.items():
        mem = r["memory_added_mb"]
        lines.append(f"  {name:<17} enable {r['enable_command_s']:>5.1f} s, working after "
                     f"{r['working_after_s']:>5.1f} s{'' if r['within_goal'] else ' (over goal)'}, "
                     f"+{mem['rss_mb']:.0f} MB RSS / +{mem['pss_mb']:.0f} MB PSS, "
                     f"enable again {r['reenable_s']:.1f} s")
    return "\n".join(lines)


def main() -> int:
    if os.geteuid() != 0 or not components_built():
        print("the addon bench needs root and built components ('make components')",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mk-bench-addons-") as tmp:
        node = TestNode(name="mk-bench-addons", root=Path(tmp) / "root", ip="10.216.0.2",
                        netns=f"mk-bench-addons-{os.getpid()}")
        node.create_netns()
        try:
            node.start()
            results = addon_bench(node)
        finally:
            node.destroy()
    print(render(results))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
