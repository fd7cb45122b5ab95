"""The enable/disable engine: order, idempotence, arguments, dependents, the lock.

kubectl, the node and image import are stood in for; everything else (the
core repository, templates, hooks, state file) is the real thing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from microkube.addons import engine
from microkube.addons.context import AddonContext, Reporter
from microkube.addons.lock import addon_lock
from microkube.addons.state import AddonState, ObjectRef
from microkube.config.node import NodeConfig
from microkube.errors import UsageError
from microkube.images.oci import ImageConfig, Layer, write_image
from microkube.kube.kubectl import objects_of
from microkube.paths import Paths


class FakeCluster:
    """What kubectl would see: the objects applied and not deleted since."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str | None], ObjectRef] = {}
        self.documents: dict[tuple[str, str, str | None], dict[str, Any]] = {}
        self.applies = 0

    def kubectl(self, paths: Paths) -> FakeCluster:
        return self

    def apply(self, manifest: str, what: str = "") -> None:
        self.applies += 1
        for r in objects_of(manifest, "test"):
            self.objects[(r.kind.lower(), r.name, r.namespace)] = r
        for doc in yaml.safe_load_all(manifest):
            if doc:
                meta = doc["metadata"]
                self.documents[(doc["kind"].lower(), meta["name"], meta.get("namespace"))] = doc

    def delete(self, objects: Sequence[ObjectRef], timeout: float = 120, what: str = "") -> None:
        for r in objects:
            self.objects.pop((r.kind.lower(), r.name, r.namespace), None)

    def exists(self, resource: str, namespace: str | None) -> bool:
        kind, name = resource.split("/")
        return (kind, name, namespace) in self.objects or kind == "storageclass"

    def get_json(self, resource: str, namespace: str | None = None) -> Any:
        return {"items": []}

    def rollout(self, resource: str, namespace: str, timeout: float,
                since: float | None = None) -> None:
        pass

    def run(self, args: Sequence[str], **_: Any) -> str:
        return ""


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Paths, FakeCluster, list[str]]:
    from microkube.paths import CertKeyPair
    from microkube.pki.ca import create_ca, write_ca

    paths = Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")
    paths.args_dir.mkdir(parents=True)
    (paths.args_dir / "kubelet.yaml").write_text("kind: KubeletConfiguration\n")
    (paths.args_dir / "kube-apiserver").write_text("--authorization-mode=RBAC,Node\n")
    paths.certs_dir.mkdir(parents=True)
    write_ca(CertKeyPair.named(paths.certs_dir, "ca"), create_ca("test-ca"))
    for image in ("coredns", "traefik", "local-path-provisioner", "metrics-server", "registry",
                  "dashboard"):
        layer = Layer()
        layer.add_bytes("/x", image.encode())
        write_image(paths.addon_images_dir / f"{image}.tar", f"microkube.local/{image}:test",
                    [layer], ImageConfig())
    cluster = FakeCluster()
    monkeypatch.setattr(engine, "_node", lambda p: NodeConfig("node1", "10.0.0.5"))
    monkeypatch.setattr(engine, "Kubectl", cluster.kubectl)
    monkeypatch.setattr(AddonContext, "import_images", lambda self: None)
    out: list[str] = []
    return paths, cluster, out


def _enable(setup: tuple[Paths, FakeCluster, list[str]], *words: str) -> str:
    paths, _, out = setup
    out.clear()
    engine.enable(paths, list(words), Reporter(out.append))
    return "".join(out)


def _disable(setup: tuple[Paths, FakeCluster, list[str]], *words: str) -> str:
    paths, _, out = setup
    out.clear()
    engine.disable(paths, list(words), Reporter(out.append))
    return "".join(out)


def test_requirements_first_then_idempotent(setup: tuple[Paths, FakeCluster, list[str]]) -> None:
    paths, cluster, _ = setup
    text = _enable(setup, "registry")
    lines = text.splitlines()
    assert lines[0].startswith(
        "enabling hostpath-storage… applied, waiting for hostpath-provisioner…")
    assert any(ln.startswith("enabling registry… applied,") for ln in lines), text
    state = AddonState.load(paths.addons_state_file)
    assert set(state.enabled) == {"core/hostpath-storage", "core/registry"}
    assert state.enabled["core/registry"].arguments == {"size": "20Gi",
                                                        "storageclass": "microkube-hostpath"}
    applies = cluster.applies
    assert _enable(setup, "registry", "storage").splitlines() == [
        "hostpath-storage is already enabled", "registry is already enabled"]
    assert cluster.applies == applies


def test_new_arguments_reconfigure(setup: tuple[Paths, FakeCluster, list[str]]) -> None:
    paths, cluster, _ = setup

    def forward_line() -> str:
        corefile = cluster.documents[("configmap", "coredns", "kube-system")]["data"]["Corefile"]
        return next(ln.strip() for ln in corefile.splitlines() if ln.strip().startswith("forward "))

    _enable(setup, "dns")
    first = forward_line()
    assert _enable(setup, "dns").strip() == "dns is already enabled"
    text = _enable(setup, "dns:10.1.2.3")
    assert text.startswith("reconfiguring dns…"), text
    assert "10.1.2.3" in text
    state = AddonState.load(paths.addons_state_file)
    assert state.enabled["core/dns"].arguments == {"upstream": ["10.1.2.3"]}
    assert forward_line() == "forward . 10.1.2.3 {" != first


def test_bad_arguments_apply_nothing(setup: tuple[Paths, FakeCluster, list[str]]) -> None:
    paths, cluster, _ = setup
    with pytest.raises(UsageError):
        _enable(setup, "ingress", "dns:1.2.3")
    real_exists = cluster.exists

    def no_storage_classes(resource: str, namespace: str | None) -> bool:
        return not resource.startswith("storageclass/") and real_exists(resource, namespace)

    cluster.exists = no_storage_classes  # type: ignore[method-assign]
    with pytest.raises(UsageError, match="storage class fast does not exist"):
        _enable(setup, "dns", "registry", "--storageclass", "fast")
    assert cluster.applies == 0
    assert not paths.addons_state_file.exists()


def test_disable_order_and_dependents(setup: tuple[Paths, FakeCluster, list[str]]) -> None:
    paths, cluster, _ = setup
    _enable(setup, "registry", "dns")
    with pytest.raises(UsageError, match="registry needs hostpath-storage; disable registry first"):
        _disable(setup, "storage")
    text = _disable(setup, "storage", "registry")
    lines = [ln for ln in text.splitlines() if ln.startswith("disabling")]
    assert [ln.split("…")[0] for ln in lines] == ["disabling registry", "disabling hostpath-storage"]
    assert "kept the volumes' data" in text
    assert set(AddonState.load(paths.addons_state_file).enabled) == {"core/dns"}
    assert not [k for k in cluster.objects if k[2] == "container-registry"]
    assert _disable(setup, "registry").strip() == "registry is not enabled"


def test_disable_helm_is_refused_before_anything(setup: tuple[Paths, FakeCluster, list[str]]) -> None:
    paths, _, _ = setup
    paths.bin_dir.mkdir(parents=True)
    (paths.bin_dir / "helm").write_text("")
    with pytest.raises(UsageError, match="cannot be disabled"):
        _disable(setup, "helm")
    assert "always enabled" in _enable(setup, "helm")


def test_a_second_enable_waits_for_the_lock(setup: tuple[Paths, FakeCluster, list[str]]) -> None:
    paths, cluster, out = setup
    held, release, waiting = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with addon_lock(paths.var_dir / "addons.lock", lambda _: None):
            held.set()
            release.wait(30)

    def say(text: str) -> None:
        out.append(text)
        if text.startswith("waiting for another"):
            waiting.set()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30), "the first holder never took the lock"
        second = threading.Thread(target=engine.enable,
                                  args=(paths, ["dashboard"], Reporter(say)), daemon=True)
        second.start()
        assert waiting.wait(30), f"the second enable did not wait: {out}"
        assert second.is_alive() and cluster.applies == 0  # nothing applied while it waits
    finally:
        release.set()
        holder.join(30)
    second.join(30)
    assert not second.is_alive(), "the second enable never got the lock"
    assert "".join(out).startswith("waiting for another 'microkube enable/disable' to finish...")
    assert cluster.applies > 0
    assert "core/dashboard" in AddonState.load(paths.addons_state_file).enabled


def test_missing_image_archive_changes_nothing(setup: tuple[Paths, FakeCluster, list[str]]) -> None:
    paths, cluster, _ = setup
    (paths.addon_images_dir / "traefik.tar").unlink()
    with pytest.raises(Exception, match=r"traefik\.tar is missing; build it with 'make components'"):
        _enable(setup, "dns", "ingress")
    assert cluster.applies == 0


def test_a_failure_ends_the_progress_line(setup: tuple[Paths, FakeCluster, list[str]]) -> None:
    from microkube.kube.kubectl import KubectlError

    paths, cluster, out = setup

    def stuck(resource: str, namespace: str, timeout: float, since: float | None = None) -> None:
        raise KubectlError("pod kube-system/dashboard-1 is CrashLoopBackOff")

    cluster.rollout = stuck  # type: ignore[method-assign]
    with pytest.raises(KubectlError):
        _enable(setup, "dashboard")
    assert "".join(out).endswith("waiting for dashboard…\n")
    assert "core/dashboard" not in AddonState.load(paths.addons_state_file).enabled
