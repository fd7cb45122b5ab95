"""The snap's user path, end to end: `snap install microkube` with no options, then what its
user types. One node for the module, installed from the packed .snap by the fake snapd,
which also answers the snapctl calls with which microkube drives snapd's daemon apps.

Nothing leaves the machine: the node has a network namespace of its own whose default
route leads nowhere, and CoreDNS forwards only to a resolver the test runs in it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from microkube.images.names import BUSYBOX_IMAGE
from microkube.services.cgroups import CGROUP_FS
from microkube.services.kubernetes import NETWORK_PARTS
from microkube.services.registry import all_daemons, control_plane_daemons
from tests.e2e.addon_support import DnsResponder, status_addons
from tests.snap.snapnode import SnapNode, require_root_and_tools, snap_node
from tests.workloads import PVC, client_pod, pvc_pod

pytestmark = pytest.mark.e2e

NAME = "mk-snap-plain"
IP = "10.217.0.2"
# With no node.cgroup-root the kubelet puts pods below its default, as on a user's machine.
KUBEPODS = "/kubepods"
CLUSTER_DNS = "10.152.183.10"
UPSTREAM_NAME = "upstream.example.test"
UPSTREAM_ADDRESS = "192.0.2.53"
# Every daemon of the node is a daemon app of the snap (snapcraft.yaml; test_snap.py checks that).
DAEMON_APPS = [f"daemon-{d.name}" for d in control_plane_daemons()]
# The snap's other daemon apps: a datastore this etcd node does not use (kine).
UNUSED_APPS = sorted({f"daemon-{d.name}" for d in all_daemons()} - set(DAEMON_APPS))


def pod_processes() -> list[int]:
    """The pids in the kubelet's cgroup tree, in every hierarchy."""
    pids: set[int] = set()
    for hierarchy in CGROUP_FS.iterdir():
        for procs in (hierarchy / KUBEPODS.strip("/")).rglob("cgroup.procs"):
            pids.update(int(x) for x in procs.read_text().split())
    return sorted(pids)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapNode]:
    require_root_and_tools()
    if pod_processes():
        pytest.fail(f"{KUBEPODS} holds processes: another Kubernetes runs on this machine")
    with snap_node(tmp_path_factory.mktemp("snapd"), NAME, IP, {}, KUBEPODS) as n:
        yield n
        if n.snapd.daemons:  # what `snap remove` does; kill_everything is the safety net
            n.snapd.stop_daemons()
            n.snapd.run_hook("remove")


def services(node: SnapNode) -> dict[str, tuple[str, str]]:
    """`snapctl services` as the snap's apps see it: app -> (startup, current)."""
    proc = node.snapd.snapctl("services")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["Service", "Startup", "Current", "Notes"], proc.stdout
    return {cols[0].removeprefix("microkube."): (cols[1], cols[2])
            for cols in (line.split() for line in lines[1:])}


def wait_ready(node: SnapNode, timeout: int = 240) -> float:
    """`microkube status --wait-ready`; the seconds it took."""
    t0 = time.monotonic()
    node.run("status", "--wait-ready", "--timeout", str(timeout), timeout=timeout + 30)
    assert node.snapd.exited() == {}, node.snapd.log_tail()
    return time.monotonic() - t0


def test_plain_snap_install_with_no_options_starts_a_ready_node(
        node: SnapNode, snap_file: Path) -> None:
    t0 = time.monotonic()
    node.snapd.snap_install(snap_file)  # no `snap set` before: every node.* option unset
    settings = yaml.safe_load((node.snapd.data_dir() / "var" / "node.yaml").read_text())
    # The host's name and the address of the default route's link, as on a user's machine.
    assert settings["node_name"] == socket.gethostname().lower()
    assert settings["node_ip"] == IP
    assert settings.get("cgroup_root") is None and settings.get("registry_mirror") is None
    # snapd started every daemon app after the install hook, as after `snap install`
    # (one this node does not use idles until `microkube start` disables it: here kine on
    # an etcd node, and apilb, which only a worker runs).
    assert UNUSED_APPS == ["daemon-apilb", "daemon-kine"]
    assert services(node) == {app: ("enabled", "active") for app in DAEMON_APPS + UNUSED_APPS}
    took = wait_ready(node)
    print(f"\nsnap install to Ready: {time.monotonic() - t0:.1f} s ({took:.1f} s waiting)")
    st = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    assert st["microkube"] == {"running": True, "ready": True, "state": "ready", "message": ""}, st
    assert st["node"] == settings["node_name"]
    # snapd's word for each daemon app reaches the user: every daemon serves.
    # Every daemon app, and kubelite's network parts, which status lists under their names.
    assert st["daemons"] == {name: "ready" for name in [
        *(app.removeprefix("daemon-") for app in DAEMON_APPS), *NETWORK_PARTS]}, st["daemons"]


def _nslookup(node: SnapNode, name: str) -> str:
    return node.kubectl("exec", "client", "--", "nslookup", name, CLUSTER_DNS)


def test_enable_and_the_users_path_in_the_snap(node: SnapNode, tmp_path: Path) -> None:
    steps: dict[str, float] = {}
    t = time.monotonic()

    def step(name: str) -> None:
        nonlocal t
        steps[name], t = time.monotonic() - t, time.monotonic()

    # enable dns: a service's name and an upstream name resolve from a pod.
    node.kubectl_apply_when_accounts_exist(client_pod("client"))
    with DnsResponder(node, {UPSTREAM_NAME: UPSTREAM_ADDRESS}) as upstream:
        out = node.run("enable", f"dns:{node.ip}", timeout=400).stdout
        assert "enabling dns…" in out and "ready in" in out, out
        assert "dns" in status_addons(node)["enabled"]
        node.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s", timeout=150)
        # kube-proxy routes the cluster DNS address a moment after CoreDNS's rollout.
        svc = node.wait_for("the cluster DNS address to answer", lambda: _nslookup(
            node, "kubernetes.default.svc.cluster.local"), timeout=60)
        assert "10.152.183.1" in svc, svc
        assert UPSTREAM_ADDRESS in _nslookup(node, UPSTREAM_NAME)
        assert UPSTREAM_NAME in upstream.queries()
    step("enable dns")

    # enable hostpath-storage: a claim binds once a pod uses it, and keeps what it wrote.
    out = node.run("enable", "hostpath-storage", timeout=400).stdout
    assert "ready in" in out, out
    node.apply(PVC)
    node.apply(pvc_pod("writer", "echo written in the snap > /data/note && sleep 100000"))
    node.kubectl("wait", "--for=condition=Ready", "pod/writer", "--timeout=120s", timeout=150)
    assert node.kubectl_json("get", "pvc", "notes")["status"]["phase"] == "Bound"
    assert node.kubectl("exec", "writer", "--", "cat", "/data/note").strip() == "written in the snap"
    step("enable hostpath-storage")

    # disable dns: CoreDNS goes, the addon reads disabled.
    node.run("disable", "dns", timeout=400)
    assert "dns" in status_addons(node)["disabled"]
    assert not node.kubectl("get", "deployment/coredns", "-n", "kube-system",
                            "--ignore-not-found", "-o", "name").strip()
    step("disable dns")

    # images: export what the node has, remove one, import it back.
    exported = tmp_path / "images"
    node.run("images", "export-local", str(exported), timeout=400)
    busybox = [p for p in exported.iterdir() if "busybox" in p.name]
    assert busybox, list(exported.iterdir())
    node.run("ctr", "images", "rm", BUSYBOX_IMAGE)
    assert BUSYBOX_IMAGE not in node.run("ctr", "images", "ls", "-q").stdout
    node.run("images", "import", str(busybox[0]), timeout=400)
    assert BUSYBOX_IMAGE in node.run("ctr", "images", "ls", "-q").stdout
    step("images export-local, import")

    # refresh-certs --check: every certificate listed, none near its end on a new node.
    out = node.run("refresh-certs", "--check").stdout
    assert "server.crt" in out and "renew soon" not in out, out
    # What the renew-certs timer app runs: on a new node nothing is due, nothing restarts.
    out = node.run("refresh-certs", "--due").stdout
    assert "renewed: nothing" in out and "restarted" not in out, out
    step("refresh-certs --check, --due")

    # stop: snapd stops and disables every daemon app; status says so.
    node.run("stop", timeout=400)
    assert services(node) == {app: ("disabled", "inactive") for app in DAEMON_APPS + UNUSED_APPS}
    assert node.snapd.processes() == []
    assert pod_processes() == [], "the pods outlived the stop"
    proc = node.run("status", check=False)
    assert proc.returncode == 3 and "not running" in proc.stdout, proc.stdout + proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1 and proc.stderr == ""
    stopped = yaml.safe_load(node.run("status", "--format", "yaml", check=False).stdout)
    assert stopped["microkube"]["running"] is False and stopped["microkube"]["state"] == "stopped"
    step("stop, status")

    # start: enabled and running again, Ready, and the claim's data is still there.
    node.run("start", timeout=400)
    assert services(node) == {**{app: ("enabled", "active") for app in DAEMON_APPS},
                              **{app: ("disabled", "inactive") for app in UNUSED_APPS}}
    wait_ready(node)
    node.kubectl("wait", "--for=condition=Ready", "pod/writer", "--timeout=180s", timeout=200)
    assert node.kubectl("exec", "writer", "--", "cat", "/data/note").strip() == "written in the snap"
    step("start, status --wait-ready")
    print("\n" + "\n".join(f"{k:<32} {v:6.1f} s" for k, v in steps.items()))

