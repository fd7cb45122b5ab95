"""A single node whose address changes: an address on an interface it does not use restarts
nothing; an address that moves while the node is stopped is followed at the next start.

The node has its own namespace (the move disturbs it). The test never tells microkube the
new address: its environment keeps naming the old one (MICROKUBE_NODE_IP), as a user's
shell would after a DHCP lease moved the host.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from microkube.paths import Ports
from tests import netns
from tests.addressmove import (
    ADDRESS_LEAVES,
    cert_ips,
    daemon_pids,
    etcd_peer_urls,
    internal_ip,
    node_ready,
)
from tests.multinode import kubectl_as
from tests.testnode import TestNode, require_root_and_node_built
from tests.workloads import client_pod

pytestmark = pytest.mark.e2e

OLD, NEW, UNUSED = "10.218.0.2", "10.218.0.3", "10.218.9.1"
NAME = "mk-addr"


@dataclass
class Moved:
    node: TestNode
    timings: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moved]:
    require_root_and_node_built()
    root = Path(tmp_path_factory.mktemp("addr")) / "root"
    node = TestNode(name=NAME, root=root, ip=OLD, netns=f"mk-addr-{os.getpid()}")
    try:
        node.create_netns()
        node.start()
        node.apply(client_pod("client"))
        node.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s", timeout=150)
        yield Moved(node)
    finally:
        node.destroy()


def _client_restarts(node: TestNode) -> tuple[int, str]:
    status = node.kubectl_json("get", "pod", "client")["status"]["containerStatuses"][0]
    return status["restartCount"], status["containerID"]


def test_an_address_on_an_unused_interface_restarts_nothing(moved: Moved) -> None:
    node = moved.node
    daemons, pod = daemon_pids(node), _client_restarts(node)
    supervisor = (node.supervisor_state() or {}).get("pid")
    assert all(pid for pid, _ in daemons.values()), daemons
    netns.add_link(node.netns, UNUSED)
    time.sleep(25)  # past the kubelet's status update (10 s) and the supervisor's ticks
    assert daemon_pids(node) == daemons
    assert (node.supervisor_state() or {}).get("pid") == supervisor
    assert _client_restarts(node) == pod
    assert internal_ip(node, NAME) == OLD
    assert UNUSED not in cert_ips(node, "server.crt")  # nothing re-issued behind its back


def test_the_node_follows_its_address_across_a_stop(moved: Moved) -> None:
    node = moved.node
    certs = node.root / "data" / "certs"
    kept = {p: p.read_bytes() for p in certs.rglob("*.crt") if
            str(p.relative_to(certs)) not in ADDRESS_LEAVES}
    node.stop()
    netns.move_address(node.netns, OLD, NEW)
    began = time.monotonic()
    out = node.run("start", "--wait-ready", "--timeout", "240", timeout=270)
    moved.timings["start after the move"] = time.monotonic() - began
    said = out.stdout + out.stderr
    assert f"this node's address {OLD} is gone; it now uses {NEW} (the default route's " \
           "interface)" in said, said
    assert f"re-issued for {NEW}: " in said, said

    ports = Ports()
    node.wait_for("the Node's InternalIP to be the new address",
                  lambda: internal_ip(node, NAME) == NEW and node_ready(node, NAME), timeout=120)
    for leaf in ADDRESS_LEAVES:
        assert NEW in cert_ips(node, leaf), leaf
    # Same CA, and only the leaves that carry the address were re-issued.
    assert {p: p.read_bytes() for p in kept} == kept
    assert etcd_peer_urls(node)[NAME] == [f"https://{NEW}:{ports.datastore_peer}"]

    config = yaml.safe_load(node.run("config").stdout)
    assert config["clusters"][0]["cluster"]["server"] == f"https://{NEW}:{ports.api_server}"
    kubeconfig = node.root / "admin-at-new-address.config"
    kubeconfig.write_text(yaml.safe_dump(config))
    proc = kubectl_as(node, kubeconfig, "get", "node", NAME, "-o", "name")
    assert proc.returncode == 0 and proc.stdout.strip() == f"node/{NAME}", proc.stderr

    node.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s", timeout=150)
    node.wait_for("the pod's logs", lambda: "client started" in node.kubectl("logs", "client"),
                  timeout=60)
    assert node.kubectl("exec", "client", "--", "hostname").strip() == "client"
    print(f"\naddress change timings (s): {moved.timings}")
