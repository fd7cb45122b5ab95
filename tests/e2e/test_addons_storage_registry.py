"""hostpath-storage and registry on a real node.

registry requires hostpath-storage, so enabling it enables storage first. An
image is then pushed with crane (built from the pinned go-containerregistry)
to localhost:32000 and run as a pod pulled from there.
"""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from microkube.images.oci import ImageConfig, Layer, write_image
from tests.e2e.addon_support import (
    addon_node,
    addon_state,
    assert_all_gone,
    one_line_error,
    require_node_and_images,
    status_addons,
)
from tests.testnode import SNAP_TREE, TestNode, require_built
from tests.workloads import PVC, pvc_pod

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    require_node_and_images("local-path-provisioner", "registry")
    require_built(SNAP_TREE / "bin" / "crane")
    yield from addon_node(tmp_path_factory, "store")


def test_registry_enables_storage_first(node: TestNode) -> None:
    out = node.run("enable", "registry", "--size", "1Gi").stdout
    lines = out.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("enabling hostpath-storage…"))
    second = next(i for i, ln in enumerate(lines) if ln.startswith("enabling registry…"))
    assert first < second, out
    st = status_addons(node)
    assert {"hostpath-storage", "registry"} <= set(st["enabled"])
    sc = node.kubectl_json("get", "storageclass", "microkube-hostpath")
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    pvc = node.kubectl_json("get", "pvc", "registry-claim", "-n", "container-registry")
    assert pvc["status"]["phase"] == "Bound"
    hosts = node.root / "data" / "args" / "certs.d" / "localhost:32000" / "hosts.toml"
    assert 'server = "http://localhost:32000"' in hosts.read_text()
    assert node.run("enable", "registry").stdout.strip().endswith("registry is already enabled")
    line = one_line_error(node.run("enable", "registry", "--size", "lots", check=False))
    assert "registry: --size: 'lots' is not a size" in line
    assert node.kubectl_json("get", "pvc", "registry-claim", "-n", "container-registry")[
        "spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_storage_keeps_data_across_pods(node: TestNode) -> None:
    assert node.run("enable", "storage").stdout.strip() == "hostpath-storage is already enabled"
    node.apply(PVC)
    node.apply(pvc_pod("writer", "echo kept across pods > /data/note && sleep 100000"))
    node.kubectl("wait", "--for=condition=Ready", "pod/writer", "--timeout=120s", timeout=150)
    assert node.kubectl_json("get", "pvc", "notes")["status"]["phase"] == "Bound"
    node.kubectl("delete", "pod", "writer", "--wait=true")
    node.apply(pvc_pod("reader", "sleep 100000"))
    node.kubectl("wait", "--for=condition=Ready", "pod/reader", "--timeout=120s", timeout=150)
    assert node.kubectl("exec", "reader", "--", "cat", "/data/note").strip() == "kept across pods"
    pv = node.kubectl_json("get", "pvc", "notes")["spec"]["volumeName"]
    host_dir = next((node.root / "common" / "default-storage").glob(f"{pv}*"))
    assert (host_dir / "note").read_text().strip() == "kept across pods"
    node.kubectl("delete", "pod", "reader", "--wait=true")


def _pushed_image(work: Path) -> Path:
    """An OCI layout folder of an image only this test has, named for the registry."""
    layer = Layer()
    layer.add_file("/bin/busybox", Path("/bin/busybox"), 0o755)  # static, from busybox-static
    for applet in ("sh", "cat", "sleep"):
        layer.add_symlink(f"/bin/{applet}", "/bin/busybox")
    layer.add_bytes("/message", b"pulled from the registry addon\n")
    archive = work / "hello.tar"
    write_image(archive, "localhost:32000/hello:1", [layer],
                ImageConfig(cmd=["/bin/cat", "/message"]))
    layout = work / "hello-layout"
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    return layout


def test_push_with_crane_then_run_the_pushed_image(node: TestNode, tmp_path: Path) -> None:
    layout = _pushed_image(tmp_path)
    crane = str(SNAP_TREE / "bin" / "crane")
    push = subprocess.run(node.in_netns([crane, "push", "--insecure", str(layout),
                                         "localhost:32000/hello:1"]),
                          capture_output=True, text=True, timeout=120)
    assert push.returncode == 0, push.stderr
    tags = subprocess.run(node.in_netns([crane, "ls", "--insecure", "localhost:32000/hello"]),
                          capture_output=True, text=True, timeout=60)
    assert tags.stdout.split() == ["1"], tags.stderr
    node.apply("""
apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  restartPolicy: Never
  containers:
  - name: hello
    image: localhost:32000/hello:1
    imagePullPolicy: Always
""")
    node.wait_for("the pushed image to run", lambda: node.kubectl_json(
        "get", "pod", "hello")["status"]["phase"] == "Succeeded", timeout=120)
    assert node.kubectl("logs", "hello").strip() == "pulled from the registry addon"
    node.kubectl("delete", "pod", "hello", "--wait=true")


def test_storage_cannot_go_while_registry_needs_it(node: TestNode) -> None:
    line = one_line_error(node.run("disable", "hostpath-storage", check=False))
    assert "registry needs hostpath-storage" in line
    assert "hostpath-storage" in status_addons(node)["enabled"]


def test_disable_removes_registry_then_storage(node: TestNode) -> None:
    state = addon_state(node)
    reg_objects = state["core/registry"]["objects"]
    out = node.run("disable", "registry").stdout
    assert "disabling registry…" in out
    assert_all_gone(node, reg_objects)
    assert not (node.root / "data" / "args" / "certs.d" / "localhost:32000").exists()
    node.kubectl("delete", "pvc", "notes", "--wait=true")
    storage_objects = state["core/hostpath-storage"]["objects"]
    data = node.root / "common" / "default-storage"
    out = node.run("disable", "storage").stdout
    assert "kept the volumes' data in" in out and "--destroy-storage" in out
    assert data.exists()
    assert_all_gone(node, storage_objects)
    # Enable again and disable with the flag: the data goes too.
    node.run("enable", "storage")
    out = node.run("disable", "storage", "--destroy-storage").stdout
    assert "deleted the volumes' data" in out
    assert not data.exists()
    assert addon_state(node) == {}
