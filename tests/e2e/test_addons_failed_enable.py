"""An enable the API server refuses leaves nothing applied, and says who is in the way.

On a real node: a Service squatting on the cluster DNS address makes 'enable
dns' fail; an addon of our own whose second apply is refused fails halfway.
Either way no object of the addon is left, the objects that were there before
stay, and the one line names the object that holds the address or port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.addon_support import (
    addon_node,
    addon_state,
    one_line_error,
    require_node_and_images,
    status_addons,
)
from tests.testnode import TestNode

pytestmark = pytest.mark.e2e

DNS_IP = "10.152.183.10"
HELD_PORT = 30999


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    require_node_and_images("coredns")
    yield from addon_node(tmp_path_factory, "fail")


def _labelled(node: TestNode, addon: str) -> list[str]:
    """Every object of ``addon`` (by its label) the cluster has."""
    kinds = "all,configmaps,serviceaccounts,clusterroles,clusterrolebindings"
    return node.kubectl("get", kinds, "-A", "-l", f"microkube.io/addon={addon}",
                        "-o", "name").split()


def test_dns_whose_address_is_held_leaves_nothing_and_names_the_holder(node: TestNode) -> None:
    node.kubectl("create", "service", "clusterip", "squatter", "--tcp=80:80",
                 f"--clusterip={DNS_IP}")
    kubelet_config = node.root / "data" / "args" / "kubelet.yaml"
    before = kubelet_config.read_text()

    line = one_line_error(node.run("enable", "dns", check=False))
    assert line == (
        f"Error: dns: Service kube-system/kube-dns needs the cluster IP {DNS_IP}, which Service "
        "default/squatter holds; delete that Service ('microkube kubectl delete service -n "
        "default squatter') or give it another address, then run 'microkube enable dns' again; "
        "nothing was left applied")
    assert _labelled(node, "dns") == []
    assert not node.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns",
                            "-o", "name").strip()
    assert kubelet_config.read_text() == before
    assert "core/dns" not in addon_state(node)
    assert "dns" in status_addons(node)["disabled"]

    # Doing what the line says is enough.
    node.kubectl("delete", "service", "-n", "default", "squatter")
    node.run("enable", "dns")
    assert "dns" in status_addons(node)["enabled"]
    node.run("disable", "dns")


def _halfway_repository(root: Path) -> Path:
    """An addon whose first apply goes in and whose second asks for a held node port."""
    repo = root / "halfway-repo"
    (repo / "halfway").mkdir(parents=True)
    (repo / "addons.yaml").write_text(yaml.safe_dump({
        "format": 1, "description": "Addons that fail on purpose",
        "addons": [{"name": "halfway", "description": "Fails at its second apply",
                    "version": "0.1",
                    "enabled_when": {"resource": "configmap/halfway-a", "namespace": "default"},
                    "architectures": ["amd64", "arm64"]}]}))
    (repo / "halfway" / "first.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: halfway-a, namespace: default}\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: halfway-ns}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: halfway-b, namespace: halfway-ns}\n")
    (repo / "halfway" / "second.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: halfway, namespace: halfway-ns}\n"
        f"spec:\n  type: NodePort\n  ports: [{{port: 80, nodePort: {HELD_PORT}}}]\n")
    (repo / "halfway" / "addon.py").write_text(
        "def enable(ctx):\n"
        "    folder = ctx.addon.folder\n"
        "    ctx.apply((folder / 'first.yaml').read_text())\n"
        "    ctx.apply((folder / 'second.yaml').read_text())\n\n\n"
        "def disable(ctx):\n"
        "    ctx.delete(ctx.made_objects())\n")
    return repo


def test_an_addon_refused_halfway_is_rolled_back(node: TestNode, tmp_path: Path) -> None:
    node.run("addons", "repo", "add", "failing", str(_halfway_repository(tmp_path)))
    node.kubectl("create", "namespace", "halfway-ns")  # there before: must stay
    node.kubectl("create", "service", "nodeport", "port-squatter", "--tcp=80:80",
                 f"--node-port={HELD_PORT}")

    proc = node.run("enable", "halfway", check=False)
    line = one_line_error(proc)
    assert line == (
        f"Error: halfway: Service halfway-ns/halfway needs node port {HELD_PORT}, which Service "
        "default/port-squatter holds; delete that Service ('microkube kubectl delete service -n "
        "default port-squatter') or give it another port, then run 'microkube enable halfway' "
        "again; nothing was left applied")
    assert "applied," in proc.stdout and "rolling back halfway… removed, done" in proc.stdout
    for kind, name, ns in (("configmap", "halfway-a", "default"),
                           ("configmap", "halfway-b", "halfway-ns"),
                           ("service", "halfway", "halfway-ns")):
        assert not node.kubectl("get", kind, name, "-n", ns, "--ignore-not-found",
                                "-o", "name").strip(), f"{kind}/{name} was left behind"
    assert node.kubectl("get", "namespace", "halfway-ns", "-o", "name").strip() == \
        "namespace/halfway-ns"
    assert "failing/halfway" not in addon_state(node)
    assert "halfway" in status_addons(node)["disabled"]
    node.kubectl("delete", "service", "port-squatter")
    node.kubectl("delete", "namespace", "halfway-ns", "--wait=false")
    node.run("addons", "repo", "remove", "failing")
