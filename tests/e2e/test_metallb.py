"""metallb on a real node: a LoadBalancer Service gets a pool address that another host
on the same link reaches, and disable gives the address back.

The link is a bridge in a network namespace of the test's own; the node and a
client host (a namespace with only an address on that bridge) hang on it. The
client has no route to anything but the bridge's subnet, so it reaches the
Service's address only if someone on the link answers ARP for it: the speaker
(no interface of the node holds that address). Tests run in file order on one node.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.addon_support import (
    addon_state,
    assert_all_gone,
    one_line_error,
    require_node_and_images,
    status_addons,
)
from tests.lanhost import LanHost
from tests.multinode import SUBNET, Cluster
from tests.testnode import TestNode, wait_for
from tests.workloads import web_deployment

pytestmark = pytest.mark.e2e

POOL = f"{SUBNET}.200-{SUBNET}.203"
POOL_ADDRESSES = {f"{SUBNET}.{i}" for i in range(200, 204)}
CLIENT_IP = f"{SUBNET}.50"

WEB = web_deployment("web", "hello through metallb", service_type="LoadBalancer")


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestNode, LanHost]]:
    require_node_and_images("metallb-controller", "metallb-speaker")
    tag = f"lb{os.getpid()}"
    cluster = Cluster(Path(tmp_path_factory.mktemp("metallb")), tag=tag)
    client: LanHost | None = None
    try:
        cluster.create()
        node = cluster.add(f"mk-lb-{os.getpid()}")
        client = LanHost(f"mk-lbclient-{tag}", CLIENT_IP, cluster.bridge_ns, f"pc-{tag}")
        node.start()
        yield node, client
    finally:
        if client is not None:
            client.delete()
        cluster.destroy()


def _ingress_ip(node: TestNode) -> str:
    svc = node.kubectl_json("get", "service", "web")
    ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}]
    return str(ingress[0].get("ip", ""))


def _node_mac(node: TestNode) -> str:
    out = subprocess.run(node.in_netns(["ip", "-j", "link", "show", "mk0"]), capture_output=True,
                         text=True, check=True).stdout
    return str(json.loads(out)[0]["address"])


def _speaker_diagnostics(node: TestNode, client: LanHost, ip: str) -> str:
    """What the speaker and the client saw, for a failure message."""
    logs = node.kubectl("logs", "-n", "metallb-system", "-l", "component=speaker", "--tail=40",
                        check=False)
    pods = node.kubectl("get", "pods", "-A", "-o", "wide", check=False)
    return (f"client's neighbour entry for {ip}: {client.neighbour(ip)!r}\n"
            f"pods:\n{pods}\nspeaker log:\n{logs}")


def test_bad_pool_is_refused_and_nothing_applied(lan: tuple[TestNode, LanHost]) -> None:
    node, _ = lan
    for args, expected in (
            (["metallb"], "metallb needs the addresses it may give out"),
            ([f"metallb:{SUBNET}.210-{SUBNET}.200"], "ends before it starts"),
            ([f"metallb:{SUBNET}.200/24"], f"did you mean {SUBNET}.0/24?"),
            (["metallb:10.152.183.100-10.152.183.110"], "overlaps the service network")):
        line = one_line_error(node.run("enable", *args, check=False))
        assert expected in line, line
    assert not node.kubectl("get", "namespace/metallb-system", "--ignore-not-found",
                            "-o", "name").strip()
    assert not node.kubectl("get", "crd/ipaddresspools.metallb.io", "--ignore-not-found",
                            "-o", "name").strip()
    assert addon_state(node) == {}


def test_loadbalancer_service_is_reached_from_another_host(lan: tuple[TestNode, LanHost]) -> None:
    node, client = lan
    node.apply(WEB)
    node.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    # Nothing hands out addresses yet: the Service waits.
    assert _ingress_ip(node) == ""
    out = node.run("enable", f"metallb:{POOL}").stdout
    assert "enabling metallb…" in out and "ready in" in out, out
    assert f"addresses from {POOL} (4 addresses)" in out, out
    assert "metallb" in status_addons(node)["enabled"]
    ip = node.wait_for("the Service's address from the pool", lambda: _ingress_ip(node), 60)
    assert ip in POOL_ADDRESSES
    try:
        # A bound, not a timing claim: under a loaded CI machine the speaker's first
        # announcement has been seen to take over a minute.
        body = wait_for("the Service to answer the client",
                        lambda: (b := client.get(f"http://{ip}/")) == "hello through metallb"
                        and b, timeout=150)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{_speaker_diagnostics(node, client, ip)}") from None
    assert body == "hello through metallb"
    # The client learned the address from an ARP reply naming the node's interface, though
    # no interface on the node holds it: the speaker answered.
    assert client.neighbour(ip) == _node_mac(node)
    held = subprocess.run(node.in_netns(["ip", "-j", "addr", "show"]), capture_output=True,
                          text=True, check=True).stdout
    assert f'"{ip}"' not in held


def test_disable_releases_the_address(lan: tuple[TestNode, LanHost]) -> None:
    node, client = lan
    ip = _ingress_ip(node)
    assert ip in POOL_ADDRESSES
    recorded = addon_state(node)["core/metallb"]["objects"]
    out = node.run("disable", "metallb").stdout
    assert f"released {ip}" in out, out
    # MetalLB's own kinds went with their definitions: the API no longer serves them.
    custom = [o for o in recorded if o["api_version"].startswith("metallb.io/")]
    assert {o["kind"] for o in custom} == {"IPAddressPool", "L2Advertisement"}
    assert_all_gone(node, [o for o in recorded if o not in custom])
    assert not node.kubectl("api-resources", "--api-group=metallb.io", "-o", "name").strip()
    assert "metallb" in status_addons(node)["disabled"]
    assert _ingress_ip(node) == ""
    svc = node.kubectl_json("get", "service", "web")
    assert "metallb.io/ip-allocated-from-pool" not in svc["metadata"].get("annotations", {})
    # Nobody answers for the address any more.
    client.forget_neighbours()
    assert client.get(f"http://{ip}/").startswith("error:")
    assert client.neighbour(ip) in ("", "00:00:00:00:00:00")
