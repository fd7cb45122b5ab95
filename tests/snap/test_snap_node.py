"""A node run from the unpacked .snap, the way snapd runs it.

fakesnapd.py unpacks the snap file from `make snap` under a private root laid
out like snapd's, sets $SNAP, $SNAP_DATA, $SNAP_COMMON, $SNAP_REVISION and
$SNAP_NAME as snapd does, runs the hooks from meta/hooks and the daemon apps'
commands from meta/snap.yaml, in a network namespace of the test's own. The
tests run in file order on one snap: install, a Ready node serving a pod,
a refresh to a new revision, removal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from microkube.services.cgroups import CGROUP_FS
from tests.snap.fakesnapd import FakeSnapd
from tests.workloads import web_pod

pytestmark = pytest.mark.e2e

NAME = "mk-snap"
IP = "10.215.0.2"
CGROUP_ROOT = f"/microkube-test/{NAME}"

WEB = web_pod("web", "hello from the snap")


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture(scope="module")
def snapd(snap_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSnapd]:
    if os.geteuid() != 0:
        pytest.skip("running the snap's node needs root")
    for tool in ("nsenter", "ip", "iptables-save"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    netns = f"mk-snap-{os.getpid()}"
    fake = FakeSnapd(root=Path(tmp_path_factory.mktemp("snapd")), netns=netns, options={"node": {
        "name": NAME, "ip": IP, "registry-mirror": "http://127.0.0.1:5999",
        "cgroup-root": CGROUP_ROOT}})
    _sh("ip", "netns", "add", netns)
    try:
        ns = ["ip", "-n", netns]
        _sh(*ns, "link", "set", "lo", "up")
        _sh(*ns, "link", "add", "mk0", "type", "veth", "peer", "name", "mk0p")
        _sh(*ns, "addr", "add", f"{IP}/24", "dev", "mk0")
        _sh(*ns, "link", "set", "mk0p", "up")
        _sh(*ns, "link", "set", "mk0", "up")
        _sh(*ns, "route", "add", "default", "dev", "mk0")
        fake.install(snap_file)
        yield fake
    finally:
        fake.kill_everything()
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)
        for hierarchy in CGROUP_FS.iterdir():
            for d in (hierarchy / CGROUP_ROOT.strip("/"), hierarchy / "microkube-test"):
                with contextlib.suppress(OSError):  # absent, or another test node uses it
                    d.rmdir()
        shutil.rmtree(fake.root, ignore_errors=True)


def microkube(snapd: FakeSnapd, *args: str, timeout: float = 120,
              stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """$SNAP/bin/microkube, as `microkube ...` runs it: the snap's environment, the node's netns."""
    argv = snapd.in_netns([str(snapd.snap_dir() / "bin" / "microkube"), *args])
    return subprocess.run(argv, env=snapd.environment(), capture_output=True, text=True,
                          timeout=timeout, input=stdin, cwd="/")


def kubectl_json(snapd: FakeSnapd, *args: str) -> Any:
    proc = microkube(snapd, "kubectl", *args, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _ready(snapd: FakeSnapd) -> bool:
    proc = microkube(snapd, "kubectl", "get", "nodes", "-o", "json", timeout=30)
    if proc.returncode != 0:
        return False
    return any(c["type"] == "Ready" and c["status"] == "True"
               for n in json.loads(proc.stdout)["items"] for c in n["status"]["conditions"])


def wait_ready(snapd: FakeSnapd, timeout: float = 240) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        exited = snapd.exited()
        assert not exited, f"daemon apps exited: {exited}\n{snapd.log_tail()}"
        if _ready(snapd):
            return time.monotonic() - start
        time.sleep(1)
    raise AssertionError(f"no Ready node after {timeout:.0f} s\n{snapd.log_tail()}")


def fetch(snapd: FakeSnapd, url: str, timeout: float = 60) -> str:
    """GET from the node's network namespace with the snap's own Python.

    Retried: kube-proxy rejects a service's address until its endpoints are synced.
    """
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(snapd.in_netns([str(snapd.snap_dir() / "bin" / "python3"), "-c", code]),
                              capture_output=True, text=True, timeout=30)
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1]
    return proc.stdout


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the tests, in order -----------------------------------------------------------------


def test_install_hook_creates_the_tree_and_certificates(snapd: FakeSnapd) -> None:
    proc = snapd.run_hook("install")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = snapd.data_dir()
    for rel in ("args/kube-apiserver", "args/kubelet.yaml", "args/containerd.toml",
                "certs/ca.crt", "certs/server.crt", "credentials/admin.config", "var/node.yaml"):
        assert (data / rel).is_file(), rel
    assert (data / "credentials").stat().st_mode & 0o777 == 0o700
    assert (data / "credentials" / "admin.config").stat().st_mode & 0o777 == 0o600
    node = yaml.safe_load((data / "var" / "node.yaml").read_text())
    # The node.* options (snap set) shaped the node.
    assert (node["node_name"], node["node_ip"], node["cgroup_root"]) == (NAME, IP, CGROUP_ROOT)
    assert node["registry_mirror"] == "http://127.0.0.1:5999"
    # Rendered files name this revision's $SNAP and $SNAP_DATA.
    assert str(snapd.snap_dir() / "bin" / "runc") in (data / "args" / "containerd.toml").read_text()


def test_configure_hook_applies_and_refuses_options(snapd: FakeSnapd) -> None:
    assert snapd.run_hook("configure").returncode == 0  # the same options: nothing to do
    snapd.options["node"]["podcidr"] = "10.9.0.0/16"
    proc = snapd.run_hook("configure")
    assert proc.returncode != 0
    assert "unknown option node.podcidr" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    del snapd.options["node"]["podcidr"]


def test_daemon_apps_bring_up_a_ready_node_that_serves_a_pod(snapd: FakeSnapd) -> None:
    snapd.start_daemons()
    assert set(snapd.daemons) == {
        "daemon-etcd", "daemon-containerd", "daemon-kube-apiserver", "daemon-kube-controller-manager",
        "daemon-kube-scheduler", "daemon-kubelet", "daemon-kube-proxy", "daemon-flanneld"}
    took = wait_ready(snapd)
    print(f"node Ready {took:.1f} s after the daemon apps started")
    # Ready comes before the controller manager has made the namespace's service account.
    deadline = time.monotonic() + 60
    while True:
        proc = microkube(snapd, "kubectl", "apply", "-f", "-", stdin=WEB)
        if proc.returncode == 0 or time.monotonic() > deadline or "serviceaccount" not in proc.stderr:
            break
        time.sleep(1)
    assert proc.returncode == 0, proc.stderr
    proc = microkube(snapd, "kubectl", "wait", "--for=condition=Ready", "pod/web", "--timeout=180s",
                     timeout=200)
    assert proc.returncode == 0, proc.stderr + snapd.log_tail()
    pod_ip = kubectl_json(snapd, "get", "pod", "web")["status"]["podIP"]
    assert fetch(snapd, f"http://{pod_ip}:8080/").strip() == "hello from the snap"
    cluster_ip = kubectl_json(snapd, "get", "service", "web")["spec"]["clusterIP"]
    assert fetch(snapd, f"http://{cluster_ip}/").strip() == "hello from the snap"
    # Every daemon process runs from the snap's read-only tree.
    for d in snapd.daemons.values():
        assert d.proc is not None
        exe = Path(os.readlink(f"/proc/{d.proc.pid}/exe"))
        assert exe.is_relative_to(snapd.snap_dir().resolve()), (d.app, exe)


def test_refresh_keeps_data_and_certificates(snapd: FakeSnapd) -> None:
    snapd.stop_daemons()
    old_snap, old_data = snapd.snap_dir(), snapd.data_dir()
    certs = _digest(old_data / "certs")
    snapd.refresh_to("x2")
    proc = snapd.run_hook("post-refresh")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new_data = snapd.data_dir()
    assert _digest(new_data / "certs") == certs
    for path in new_data.rglob("*"):
        if path.is_file() and "etcd" not in path.parts and path.stat().st_size < 1 << 20:
            text = path.read_text(errors="replace")
            assert str(old_snap) not in text and str(old_data) not in text, path
    snapd.start_daemons()
    wait_ready(snapd)
    # The datastore came along: the pod made before the refresh is still there.
    assert kubectl_json(snapd, "get", "pod", "web")["metadata"]["name"] == "web"


def test_remove_hook_leaves_nothing_behind(snapd: FakeSnapd) -> None:
    snapd.stop_daemons()  # snapd stops the services, then runs the remove hook
    proc = snapd.run_hook("remove")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for d in (snapd.data_dir("x1"), snapd.data_dir("x2"), snapd.common_dir):
        shutil.rmtree(d)  # what snapd deletes after the hook
    assert snapd.processes() == []
    assert snapd.mounts() == []
    links = subprocess.run(["ip", "-n", snapd.netns, "-o", "link"], capture_output=True,
                           text=True, check=True).stdout
    assert "flannel.1" not in links and "cni0" not in links and "veth" not in links
    rules = subprocess.run(snapd.in_netns(["iptables-save"]), capture_output=True, text=True,
                           check=True).stdout
    for prefix in ("KUBE-", "FLANNEL-", "CNI-"):
        assert prefix not in rules, rules
    assert not any((h / CGROUP_ROOT.strip("/")).exists() for h in CGROUP_FS.iterdir())
