"""Three real control planes and a worker: the worker reaches the API through its own load
balancer, and survives the loss of the control plane it was using.

The HA tests' cluster (tests/hacluster.py) is taken over once the control-plane join tests
are done with it, checked healthy, and given a worker; the tests run in order: the worker's
balancer knows every API server; then every process of the control plane it uses is
killed (SIGKILL by pid: supervisor, daemons, shims, pods) and the API keeps serving through
the other two, a pod bound to the worker is Running within 15 s, the worker stays Ready and
its earlier pod keeps answering; last, ``microkube start`` brings the lost node back into
etcd and HA is yes again, with no other step.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import yaml

from tests import workloads
from tests.failover import (
    Failover,
    HaCluster,
    balancer_state,
    kill_server_in_use,
    pod_phase,
    voters,
)
from tests.hacluster import NAMES, WORKER, HaLab
from tests.testnode import TestNode


@dataclass
class Lab:
    ha: HaCluster
    before_uid: str  # the earlier pod's container, to tell it was not restarted
    loss: Failover | None = None


def _pod(node: TestNode, name: str) -> dict[str, Any]:
    return dict(node.kubectl_json("get", "pod", name))


def _epoch(stamp: str) -> float:
    """A Kubernetes timestamp (RFC 3339, "Z") as Unix seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _answers(worker: TestNode, ip: str) -> str:
    """The web pod at ``ip`` answers from the worker's own network namespace."""
    argv = worker.in_netns(["python3", "-c", "import sys, urllib.request; print(urllib.request"
                            ".urlopen(sys.argv[1], timeout=5).read().decode().strip())",
                            f"http://{ip}:8080/"])
    return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()


@pytest.fixture(scope="module")
def lab(ha: HaLab) -> Lab:
    ha.healthy()
    worker = ha.with_worker()
    first = ha.planes[0]
    first.apply(workloads.web_pod("before", "answered before and after", node=WORKER))
    first.wait_for("the earlier pod Running", lambda: pod_phase(first, "before") == "Running",
                   timeout=120)
    status = _pod(first, "before")["status"]["containerStatuses"][0]
    return Lab(HaCluster(ha.lan, ha.planes, worker), status["containerID"])


def test_the_worker_balances_over_every_api_server(lab: Lab) -> None:
    worker, planes = lab.ha.worker, lab.ha.planes
    every = sorted(f"{p.ip}:16443" for p in planes)
    state = balancer_state(worker)
    assert state["current"] in every
    saved = json.loads((worker.root / "data" / "var" / "api-servers.json").read_text())
    assert sorted(saved["servers"]) == every
    st = yaml.safe_load(worker.run("status", "--format", "yaml").stdout)
    assert st["daemons"]["apilb"] == "ready"
    assert st["control-plane"] == f"https://{planes[0].ip}:16443"  # the join address, kept
    assert sorted(st["api-load-balancer"]["servers"]) == every
    assert "api-load-balancer: using" in worker.run("status").stdout


def test_losing_the_control_plane_in_use_is_survived(lab: Lab) -> None:
    ha = lab.ha
    lab.loss = loss = kill_server_in_use(ha, "after")
    print(f"\nkilled {loss.victim.name}: the balancer switched after {loss.switch_s} s; a new "
          f"pod Running on the worker {loss.pod_running_s} s after the kill")
    assert loss.switch_s <= 5.0
    assert loss.pod_running_s <= 15.0
    # The API keeps serving through both other API servers, reads and writes.
    for node in loss.survivors:
        node.run("kubectl", "create", "configmap", f"during-loss-{node.name}",
                 "--from-literal=k=v", timeout=30)
    survivor = loss.survivors[0]
    # The worker stays Ready: its kubelet renews its lease through the balancer after the
    # loss, and its Ready condition never changed.
    survivor.wait_for("the worker's lease renewed after the loss", lambda: _epoch(
        survivor.kubectl_json("get", "lease", "-n", "kube-node-lease", WORKER)["spec"]
        ["renewTime"]) > loss.killed_wall + 1, timeout=30)
    node = survivor.kubectl_json("get", "node", WORKER)
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert _epoch(ready["lastTransitionTime"]) < loss.killed_wall, ready
    # Its earlier pod kept running (same container, no restart) and answers.
    before = _pod(survivor, "before")
    status = before["status"]["containerStatuses"][0]
    assert before["status"]["phase"] == "Running"
    assert (status["containerID"], status["restartCount"]) == (lab.before_uid, 0)
    assert _answers(ha.worker, before["status"]["podIP"]) == "answered before and after"
    after = _pod(survivor, "after")
    assert survivor.wait_for("the new pod answers", lambda: _answers(
        ha.worker, after["status"]["podIP"]) == "after on the worker", timeout=30)


def test_the_lost_control_plane_starts_again_and_ha_returns(lab: Lab) -> None:
    loss = lab.loss
    assert loss is not None, "runs after the loss"
    began = time.monotonic()
    loss.victim.start(timeout=240)
    print(f"\n{loss.victim.name} Ready {time.monotonic() - began:.1f} s after 'start'")
    for node in lab.ha.planes:
        node.wait_for("three voters again", lambda n=node: voters(n) == sorted(NAMES),
                      timeout=120)
    pretty = loss.victim.run("status").stdout
    assert "high-availability: yes" in pretty, pretty
    # It serves what was written while it was gone.
    for survivor in loss.survivors:
        assert loss.victim.kubectl("get", "configmap", f"during-loss-{survivor.name}", "-o",
                                   "jsonpath={.data.k}") == "v"
    every = sorted(f"{p.ip}:16443" for p in lab.ha.planes)
    loss.victim.wait_for("the worker's balancer to find it healthy again", lambda: sorted(
        balancer_state(lab.ha.worker).get("healthy", [])) == every, timeout=60)
