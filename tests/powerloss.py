"""A power loss, for tests and ``make bench``: every process of the nodes dies at once, by pid,
with no chance to flush; then the nodes start again and must come back with nothing lost.

:func:`power_cut` freezes every process of every node first (SIGSTOP), so none of them runs,
forks, writes or notices a peer's death before the end, then SIGKILLs them all. The processes
are a node's daemons, its supervisor, containerd's shims and the pods' processes
(:meth:`tests.testnode.TestNode.processes`: command lines naming the node's root, their
descendants, and the node's pod cgroup subtree).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from tests.multinode import Cluster, timed_join
from tests.testnode import TestNode, wait_for
from tests.workloads import web_deployment, web_pod

SEED_NAMESPACE = "seed"
SEED_CONFIGMAPS = 200
SEED_DEPLOYMENTS = ("seed-web-a", "seed-web-b", "seed-web-c")


def power_cut(nodes: Sequence[TestNode]) -> int:
    """Kill every process of ``nodes`` at once: freeze them all, then SIGKILL each by pid, until
    none is left. Returns how many processes died. Raises AssertionError if any survives."""
    frozen: dict[int, psutil.Process] = {}
    for _ in range(10):  # a process forked before its parent froze shows up in the next look
        new = [p for node in nodes for p in node.processes() if p.pid not in frozen]
        if not new:
            break
        for p in new:
            with contextlib.suppress(psutil.Error):
                p.suspend()
            frozen[p.pid] = p
    for p in frozen.values():
        with contextlib.suppress(psutil.Error):
            p.kill()
    _, alive = psutil.wait_procs(list(frozen.values()), timeout=10)
    left = [p for p in alive if _running(p)] + [p for n in nodes for p in n.processes()]
    assert not left, f"processes outlived the power cut: {left}"
    return len(frozen)


def _running(p: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return p.status() != psutil.STATUS_ZOMBIE
    return False


@dataclass
class PowerOn:
    """``microkube start`` on each node, all at once: what each printed, and when."""

    began: float  # time.time() when the first start ran
    outputs: dict[str, subprocess.CompletedProcess[str]]


def power_on(nodes: Sequence[TestNode], timeout: float = 120) -> PowerOn:
    """Run ``microkube start`` (no waiting) on every node in the order given, each launched
    without waiting on the one before; every one must exit 0."""
    began = time.time()
    procs = [(n, subprocess.Popen(n.in_netns([*n.cli, "start"]), env=n.env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE))
             for n in nodes]
    outputs = {}
    for node, proc in procs:
        out, err = proc.communicate(timeout=timeout)
        outputs[node.name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        assert proc.returncode == 0, f"start on {node.name} exited {proc.returncode}:\n{out}{err}"
    return PowerOn(began, outputs)


def _status(node: TestNode) -> dict[str, Any]:
    import yaml

    doc: dict[str, Any] = yaml.safe_load(node.run("status", "--format", "yaml", check=False,
                                                  timeout=30).stdout)
    return doc


def nodes_ready_since(nodes: Sequence[TestNode], since: float) -> bool:
    """True when every node's own status is ready and, as the first node's API server sees
    them, every Node's Ready condition was posted after ``since`` (a time.time()): a Ready
    recorded before the power loss does not count."""
    if not all(_status(n)["microkube"]["ready"] for n in nodes):
        return False
    fresh = 0
    for item in nodes[0].kubectl_json("get", "nodes")["items"]:
        for c in item["status"]["conditions"]:
            beat = datetime.datetime.fromisoformat(c["lastHeartbeatTime"].replace("Z", "+00:00"))
            if c["type"] == "Ready" and c["status"] == "True" and beat.timestamp() >= since - 1:
                fresh += 1
    return fresh == len(nodes)


def wait_all_ready(nodes: Sequence[TestNode], since: float, timeout: float = 300) -> float:
    """Wait until :func:`nodes_ready_since` holds; the seconds from ``since`` until it did."""
    wait_for("every node Ready again", lambda: nodes_ready_since(nodes, since), timeout,
             every=1.0, tolerate=(AssertionError, subprocess.SubprocessError, ValueError,
                                  KeyError, TypeError))
    return time.time() - since


def three_voters(node: TestNode, names: Sequence[str]) -> bool:
    """True when ``node``'s status shows HA on with exactly ``names`` voting."""
    ha = _status(node).get("high-availability") or {}
    return bool(ha.get("enabled")) and ha.get("voters") == sorted(names)


def form_control_planes(lan: Cluster, names: Sequence[str]) -> list[TestNode]:
    """Start the first of ``names`` on ``lan``, join the others to it as control planes, and
    wait until every node's status (and so its cached member list) names them all voting."""
    nodes = [lan.add(name) for name in names]
    nodes[0].start()
    for joiner in nodes[1:]:
        join = timed_join(joiner, lan.join_string(nodes[0]))
        assert join.returncode == 0, join.output
    for node in nodes:
        node.wait_for(f"{node.name} sees every voter", lambda n=node: three_voters(n, names),
                      timeout=90)
    return nodes


def add_worker(lan: Cluster, control_plane: TestNode, name: str) -> TestNode:
    """A worker named ``name`` on ``lan``, joined through ``control_plane`` and Ready."""
    worker = lan.add(name)
    lan.join_worker(worker, lan.join_string(control_plane))
    worker.run("status", "--wait-ready", "--timeout", "120", timeout=150)
    return worker


# --- the known set of objects --------------------------------------------------------------


def seed(node: TestNode, configmaps: int = SEED_CONFIGMAPS, pinned_to: Sequence[str] = ()) -> None:
    """Create the seed namespace with ``configmaps`` ConfigMaps (each holding its own index),
    the seed Deployments (one busybox httpd each) with their Services, and a bare httpd Pod
    bound to each Node in ``pinned_to`` (``seed-on-NODE``); wait until every one serves."""
    items = [{"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": f"seed-{i:03d}", "labels": {"seed": "yes"}},
              "data": {"index": str(i)}} for i in range(configmaps)]
    node.kubectl("create", "namespace", SEED_NAMESPACE)
    node.run("kubectl", "-n", SEED_NAMESPACE, "create", "-f", "-",
             input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    for name in SEED_DEPLOYMENTS:
        node.run("kubectl", "-n", SEED_NAMESPACE, "apply", "-f", "-",
                 input=web_deployment(name, f"hello from {name}"))
    for name in pinned_to:
        node.run("kubectl", "-n", SEED_NAMESPACE, "apply", "-f", "-",
                 input=web_pod(f"seed-on-{name}", f"hello from {name}", node=name))
    node.kubectl("-n", SEED_NAMESPACE, "wait", "--for=condition=Available", "deployment",
                 "--all", "--timeout=180s", timeout=200)
    node.kubectl("-n", SEED_NAMESPACE, "wait", "--for=condition=Ready", "pod", "--all",
                 "--timeout=180s", timeout=200)


@dataclass
class Seen:
    """What is left of the seed: ConfigMaps by name with their index, Services' cluster IPs,
    Deployments' ready replicas, and the ``app`` labels of its pods."""

    configmaps: dict[str, str]
    services: dict[str, str]
    ready: dict[str, int]
    apps: set[str]

    def lost(self, before: Seen) -> list[str]:
        """What ``before`` had that this look does not (a changed value counts as lost)."""
        gone = [f"configmap {n}" for n, v in before.configmaps.items()
                if self.configmaps.get(n) != v]
        gone += [f"service {n}" for n, ip in before.services.items() if self.services.get(n) != ip]
        return gone + [f"deployment {n}" for n in before.ready if n not in self.ready]


def look(node: TestNode) -> Seen:
    """The seed as ``node``'s API server returns it."""
    cms = node.kubectl_json("-n", SEED_NAMESPACE, "get", "configmaps", "-l", "seed=yes")["items"]
    svcs = node.kubectl_json("-n", SEED_NAMESPACE, "get", "services")["items"]
    deps = node.kubectl_json("-n", SEED_NAMESPACE, "get", "deployments")["items"]
    pods = node.kubectl_json("-n", SEED_NAMESPACE, "get", "pods")["items"]
    return Seen({c["metadata"]["name"]: c["data"]["index"] for c in cms},
                {s["metadata"]["name"]: s["spec"]["clusterIP"] for s in svcs},
                {d["metadata"]["name"]: int(d["status"].get("readyReplicas") or 0) for d in deps},
                {p["metadata"]["labels"].get("app", "") for p in pods})


def workloads_back(node: TestNode, since: float, before: Seen) -> Seen | None:
    """The seed once every app of ``before`` (each Deployment, each bare Pod) has a pod whose
    container is ready and was started after ``since`` (a time.time(): the containers came
    back after the power loss); else None."""
    pods = node.kubectl_json("-n", SEED_NAMESPACE, "get", "pods")["items"]
    back = set()
    for pod in pods:
        for c in pod["status"].get("containerStatuses") or []:
            started = (c.get("state") or {}).get("running", {}).get("startedAt")
            if c.get("ready") and started and datetime.datetime.fromisoformat(
                    started.replace("Z", "+00:00")).timestamp() >= since - 1:
                back.add(pod["metadata"]["labels"].get("app"))
    seen = look(node)
    return seen if back >= before.apps else None
