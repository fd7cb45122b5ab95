"""NetworkPolicy is enforced across nodes: a control plane and a worker on a test LAN, each
running its own policy controller for the pods it hosts.

One cluster (tests/multinode.py) for the module. A server pod and two client pods run on
each node (pinned by nodeName), so every client reaches one server over flannel's VXLAN
link and one on its own node. Each step waits until the whole matrix of who-reaches-what
is exactly the expected one: default-deny ingress closes both servers, an allow rule by
pod label admits exactly the labelled clients, from either node, deleting the policies
opens everything again, and an egress policy that lets the friends send only into the
worker's pod subnet cuts the worker's friend off from the control plane.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.multinode import control_plane_and_worker
from tests.netpolicy import SERVE, SLEEP, expect, namespace, pod, pod_ip, reach
from tests.testnode import TestNode, require_root_and_node_built

CP, WORKER = "np-cp", "np-w1"
NS = "np-multi"
SERVERS = {"web-cp": CP, "web-w": WORKER}
# Client pod -> the node it runs on; the role label is what the allow rule selects.
CLIENTS = {"friend-cp": CP, "stranger-cp": CP, "friend-w": WORKER, "stranger-w": WORKER}

WORKLOADS = "---\n".join([
    namespace(NS, {}),
    *(pod(name, NS, {"tier": "web"}, SERVE, node=node) for name, node in SERVERS.items()),
    *(pod(name, NS, {"role": name.split("-")[0]}, SLEEP, node=node)
      for name, node in CLIENTS.items()),
])

DENY_INGRESS = f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: deny-ingress, namespace: {NS}}}
spec:
  podSelector: {{}}
  policyTypes: [Ingress]
"""

ALLOW_FRIENDS = f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: allow-friends, namespace: {NS}}}
spec:
  podSelector: {{matchLabels: {{tier: web}}}}
  policyTypes: [Ingress]
  ingress:
  - from: [{{podSelector: {{matchLabels: {{role: friend}}}}}}]
    ports: [{{protocol: TCP, port: 8080}}]
"""


def egress_within(cidr: str) -> str:
    """A policy letting the pods labelled role=friend send only to ``cidr``."""
    return f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: friends-egress, namespace: {NS}}}
spec:
  podSelector: {{matchLabels: {{role: friend}}}}
  policyTypes: [Egress]
  egress:
  - to: [{{ipBlock: {{cidr: "{cidr}"}}}}]
"""


@dataclass
class Nodes:
    cp: TestNode
    worker: TestNode


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """The control plane and a joined worker, with the servers and clients Ready."""
    require_root_and_node_built()
    with control_plane_and_worker(Path(tmp_path_factory.mktemp("lan")), CP, WORKER) \
            as (_lan, cp, worker):
        cp.apply(WORKLOADS)
        cp.kubectl("wait", "--for=condition=Ready", "pod", "--all", "-n", NS,
                   "--timeout=120s", timeout=150)
        yield Nodes(cp, worker)


def _matrix(cp: TestNode) -> dict[str, set[str]]:
    """client -> the servers (web-cp, web-w) it gets an answer from on port 8080."""
    targets = {name: f"{pod_ip(cp, NS, name)}:8080" for name in SERVERS}
    return {client: reach(cp, client, NS, targets) for client in CLIENTS}


def _expect(cp: TestNode, expected: dict[str, set[str]], what: str) -> None:
    expect(cp, lambda: _matrix(cp), expected, what)


OPEN = {client: set(SERVERS) for client in CLIENTS}


def test_every_node_enforces_and_the_pods_sit_where_they_were_pinned(nodes: Nodes) -> None:
    for node in (nodes.cp, nodes.worker):
        doc = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
        assert doc["network-policy"] == {"enforced": True}
        assert doc["daemons"]["netpol"] == "ready"
    placed = {p["metadata"]["name"]: p["spec"]["nodeName"]
              for p in nodes.cp.kubectl_json("get", "pods", "-n", NS)["items"]}
    assert placed == SERVERS | CLIENTS


def test_without_a_policy_every_client_reaches_both_nodes(nodes: Nodes) -> None:
    _expect(nodes.cp, OPEN, "every client to reach the servers on both nodes")


def test_default_deny_ingress_blocks_traffic_across_nodes(nodes: Nodes) -> None:
    nodes.cp.apply(DENY_INGRESS)
    _expect(nodes.cp, {client: set() for client in CLIENTS},
            "the deny-all policy to close both servers")


def test_an_allow_rule_by_pod_label_lets_exactly_that_client_through_across_nodes(
        nodes: Nodes) -> None:
    nodes.cp.apply(ALLOW_FRIENDS)
    expected = {"friend-cp": set(SERVERS), "friend-w": set(SERVERS),
                "stranger-cp": set(), "stranger-w": set()}
    _expect(nodes.cp, expected, "the allow rule to admit the friends, from either node")


def test_deleting_the_policies_restores_traffic_across_nodes(nodes: Nodes) -> None:
    nodes.cp.kubectl("delete", "networkpolicy", "--all", "-n", NS)
    _expect(nodes.cp, OPEN, "traffic to come back once the policies are gone")


def test_an_egress_policy_on_the_workers_pod_blocks_its_cross_node_egress(nodes: Nodes) -> None:
    cp = nodes.cp
    worker_cidr = cp.kubectl("get", "node", WORKER, "-o", "jsonpath={.spec.podCIDR}").strip()
    assert worker_cidr, "the worker has no pod CIDR"
    cp.apply(egress_within(worker_cidr))
    # Both friends are selected and may send only into the worker's pod subnet: friend-w
    # keeps its own node's server and loses the control plane's; friend-cp, on the control
    # plane, keeps only the server across the link. The strangers are not selected.
    expected = {**OPEN, "friend-w": {"web-w"}, "friend-cp": {"web-w"}}
    _expect(cp, expected, "the egress policy to keep friend-w on its own node")
    cp.kubectl("delete", "networkpolicy", "friends-egress", "-n", NS)
    _expect(cp, OPEN, "egress to come back once the policy is gone")
