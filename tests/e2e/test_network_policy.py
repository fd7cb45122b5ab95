"""NetworkPolicy is enforced on a real node: deny, allow by pod label, namespace label and
port, egress, and traffic back once a policy goes.

One node for the module. A server pod in namespace ``np-web`` answers HTTP on two ports;
clients in three namespaces probe it by pod IP (no Service, so no address translation
stands between a client and the policy). Every probe of one client runs in one
``kubectl exec``, in parallel, each bounded by busybox's ``timeout``; a step waits until
the whole matrix of who-reaches-what is exactly the expected one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.netpolicy import SERVE, SLEEP, expect, namespace, pod, pod_ip, reach
from tests.testnode import TestNode, require_root_and_node_built

pytestmark = pytest.mark.e2e

PORTS = (8080, 9090)
# Client pod -> its namespace. np-web holds the server; np-trusted's label admits it.
CLIENTS = {"friend": "np-web", "stranger": "np-web", "trusted": "np-trusted", "other": "np-other"}

WORKLOADS = "---\n".join([
    namespace("np-web", {}),
    namespace("np-trusted", {"trust": "yes"}),
    namespace("np-other", {}),
    pod("web", "np-web", {"app": "web"}, SERVE),
    # A second server, in np-other, for the egress step: an address the egress rule leaves out.
    pod("web", "np-other", {"app": "web"}, SERVE),
    *(pod(name, ns, {"role": name}, SLEEP) for name, ns in CLIENTS.items()),
])

DENY_INGRESS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: np-web}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""

# From pods labelled role=friend (this namespace) or any pod of a namespace labelled
# trust=yes, and only to port 8080.
ALLOW_WEB = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: np-web}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {role: friend}}
    - namespaceSelector: {matchLabels: {trust: "yes"}}
    ports: [{protocol: TCP, port: 8080}]
"""

# np-other's pods may only send to pods labelled app=web in np-web, on port 9090.
EGRESS_OTHER = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-to-web, namespace: np-other}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: np-web}}
      podSelector: {matchLabels: {app: web}}
    ports: [{protocol: TCP, port: 9090}]
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    """A node of this module's own, with the servers and clients running."""
    require_root_and_node_built()
    root = Path(tmp_path_factory.mktemp("netpol")) / "root"
    n = TestNode(name="mk-netpol", root=root, ip="10.216.0.2", netns=f"mk-netpol-{os.getpid()}")
    n.create_netns()
    try:
        n.start()
        n.apply(WORKLOADS)
        for ns in ("np-web", "np-trusted", "np-other"):
            n.kubectl("wait", "--for=condition=Ready", "pod", "--all", "-n", ns,
                      "--timeout=120s", timeout=150)
        yield n
    finally:
        n.destroy()


def _matrix(node: TestNode) -> dict[str, set[str]]:
    """client -> the targets it reaches: web:8080, web:9090 (np-web), other-web:8080."""
    web, other_web = pod_ip(node, "np-web", "web"), pod_ip(node, "np-other", "web")
    targets = {f"web:{p}": f"{web}:{p}" for p in PORTS} | {"other-web:8080": f"{other_web}:8080"}
    return {client: reach(node, client, ns, targets) for client, ns in CLIENTS.items()}


ALL = {"web:8080", "web:9090", "other-web:8080"}
OPEN = dict.fromkeys(CLIENTS, ALL)


def _expect(node: TestNode, expected: dict[str, set[str]], what: str) -> None:
    expect(node, lambda: _matrix(node), expected, what)


def test_status_says_network_policy_is_enforced(node: TestNode) -> None:
    assert "network policy enforced: yes" in node.run("status").stdout
    doc = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    assert doc["network-policy"] == {"enforced": True}
    assert doc["daemons"]["netpol"] == "ready"


def test_without_a_policy_every_pod_reaches_every_port(node: TestNode) -> None:
    _expect(node, OPEN, "every client to reach every server port")


def test_default_deny_ingress_blocks_all_traffic_to_the_namespace(node: TestNode) -> None:
    node.apply(DENY_INGRESS)
    closed = {client: {"other-web:8080"} for client in CLIENTS}
    _expect(node, closed, "the deny-all policy to close np-web")


def test_allow_by_pod_label_namespace_label_and_port_lets_exactly_that_through(
        node: TestNode) -> None:
    node.apply(ALLOW_WEB)
    expected = {"friend": {"web:8080", "other-web:8080"},  # pod label, port 8080 only
                "trusted": {"web:8080", "other-web:8080"},  # namespace label, port 8080 only
                "stranger": {"other-web:8080"},  # same namespace, no label
                "other": {"other-web:8080"}}  # a namespace without the label
    _expect(node, expected, "the allow rule to admit friend and trusted on 8080 only")


def test_deleting_the_policies_restores_traffic(node: TestNode) -> None:
    node.kubectl("delete", "networkpolicy", "--all", "-n", "np-web")
    _expect(node, OPEN, "traffic to come back once the policies are gone")


def test_an_egress_policy_blocks_and_allows(node: TestNode) -> None:
    node.apply(EGRESS_OTHER)
    # 'other' may only send to web:9090; its neighbour other-web (same namespace) stays
    # reachable from everyone else, whose namespaces have no egress policy.
    expected = {**OPEN, "other": {"web:9090"}}
    _expect(node, expected, "the egress policy to confine np-other's pods to web:9090")
    node.kubectl("delete", "networkpolicy", "egress-to-web", "-n", "np-other")
    _expect(node, OPEN, "egress to come back once the policy is gone")
