"""A node brought up from a launch configuration alone: its name, CIDR, a daemon flag and an
addon (dns, forwarding only to an address inside the node's own namespace) all come from
the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.e2e.addon_support import ADDON_NODE_IP, require_node_and_images, status_addons
from tests.testnode import TestNode

pytestmark = pytest.mark.e2e

LAUNCH = f"""\
version: 0.1.0
nodeName: mk-launched
nodeAddress: {ADDON_NODE_IP}
serviceCIDR: 10.152.184.0/24
extraKubeletArgs:
  --max-pods: 57
addons:
  - name: dns
    args: [--upstream, {ADDON_NODE_IP}]
"""


def test_a_node_comes_up_from_a_launch_file_with_its_addon(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    require_node_and_images("coredns")
    # A short root: the kubelet's unix sockets must fit in 108 bytes.
    tmp_path = Path(tmp_path_factory.mktemp("launch"))
    node = TestNode(name="mk-launch", root=tmp_path / "root", ip=ADDON_NODE_IP,
                    netns=f"mk-launch-{os.getpid()}")
    launch = tmp_path / "launch.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(LAUNCH.replace("serviceCIDR", "serviceCidr"))
    node.create_netns()
    try:
        refused = node.run("start", "--config", str(bad), check=False)
        assert refused.returncode == 2 and "unknown key 'serviceCidr'" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert not (node.root / "data" / "var" / "node.yaml").exists()

        launch.write_text(LAUNCH)
        node.run("start", "--config", str(launch), "--timeout", "240", timeout=600)
        [n] = node.kubectl_json("get", "nodes")["items"]
        assert n["metadata"]["name"] == "mk-launched"
        assert n["status"]["capacity"]["pods"] == "57"
        svc = node.kubectl("get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}")
        assert svc == "10.152.184.1"
        assert "dns" in status_addons(node)["enabled"]
        corefile = node.kubectl("-n", "kube-system", "get", "configmap", "coredns",
                                "-o", "jsonpath={.data.Corefile}")
        assert f"forward . {ADDON_NODE_IP}" in corefile
        # Applied once: a second start does not redo it, and --config is now refused.
        again = node.run("start", "--config", str(launch), check=False)
        assert again.returncode == 2 and "set up already" in again.stderr
        st = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
        assert st["node"] == "mk-launched"
    finally:
        node.destroy()
