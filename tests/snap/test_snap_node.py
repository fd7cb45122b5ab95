"""A node run from the unpacked .snap, the way snapd runs it.

fakesnapd.py unpacks the snap file from `make snap` under a private root laid
out like snapd's, sets $SNAP, $SNAP_DATA, $SNAP_COMMON, $SNAP_REVISION and
$SNAP_NAME as snapd does, runs the hooks from meta/hooks and the daemon apps'
commands from meta/snap.yaml, in a network namespace of the test's own. The
tests run in file order on one snap: install, a Ready node serving a pod,
a refresh to a new revision, removal.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from microkube.services.cgroups import CGROUP_FS
from microkube.services.registry import all_daemons, control_plane_daemons
from tests.e2e.addon_support import status_addons
from tests.snap.snapnode import SnapNode, require_root_and_tools, snap_node
from tests.workloads import web_pod

pytestmark = pytest.mark.e2e

NAME = "mk-snap"
IP = "10.215.0.2"
CGROUP_ROOT = f"/microkube-test/{NAME}"

WEB = web_pod("web", "hello from the snap")
# `snap set microkube config=...` before the install hook (as a gadget's default would):
# its flags shape the first setup, and the deployer enables its addon once the node is Ready.
LAUNCH = """\
version: 0.1.0
extraKubeletArgs:
  --max-pods: 50
addons:
  - name: hostpath-storage
"""
# Every source may reach the web pod: the controller still makes sets for its rule.
WEB_OPEN = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-open}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress: [{}]
"""


@pytest.fixture(scope="module")
def node(snap_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapNode]:
    require_root_and_tools()
    options = {"node": {"name": NAME, "ip": IP, "registry-mirror": "http://127.0.0.1:5999",
                        "cgroup-root": CGROUP_ROOT},
               "config": LAUNCH}
    with snap_node(tmp_path_factory.mktemp("snapd"), NAME, IP, options, CGROUP_ROOT) as n:
        n.snapd.install(snap_file)
        yield n


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the tests, in order -----------------------------------------------------------------


def test_install_hook_creates_the_tree_and_certificates(node: SnapNode) -> None:
    snapd = node.snapd
    proc = snapd.run_hook("install")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = snapd.data_dir()
    for rel in ("args/kube-apiserver", "args/kubelet.yaml", "args/containerd.toml",
                "certs/ca.crt", "certs/server.crt", "credentials/admin.config", "var/node.yaml"):
        assert (data / rel).is_file(), rel
    assert (data / "credentials").stat().st_mode & 0o777 == 0o700
    assert (data / "credentials" / "admin.config").stat().st_mode & 0o777 == 0o600
    settings = yaml.safe_load((data / "var" / "node.yaml").read_text())
    # The node.* options (snap set) shaped the node.
    assert (settings["node_name"], settings["node_ip"], settings["cgroup_root"]) == (
        NAME, IP, CGROUP_ROOT)
    assert settings["registry_mirror"] == "http://127.0.0.1:5999"
    # The launch configuration of the `config` option shaped it too (kept 0600).
    assert "--max-pods=50" in (data / "args" / "kubelet").read_text()
    launch = snapd.common_dir / ".microkube.yaml"
    assert launch.read_text() == LAUNCH and launch.stat().st_mode & 0o777 == 0o600
    # Rendered files name this revision's $SNAP and $SNAP_DATA.
    assert str(snapd.snap_dir() / "bin" / "runc") in (data / "args" / "containerd.toml").read_text()


def test_configure_hook_applies_and_refuses_options(node: SnapNode) -> None:
    snapd = node.snapd
    assert snapd.run_hook("configure").returncode == 0  # the same options: nothing to do
    snapd.options["node"]["podcidr"] = "10.9.0.0/16"
    proc = snapd.run_hook("configure")
    assert proc.returncode != 0
    assert "unknown option node.podcidr" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    del snapd.options["node"]["podcidr"]


def test_daemon_apps_bring_up_a_ready_node_that_serves_a_pod(node: SnapNode) -> None:
    snapd = node.snapd
    snapd.start_daemons()
    # One app per daemon any node may run; snapd starts them all, and the one of a datastore
    # this node does not use (kine, with etcd) idles.
    assert set(snapd.daemons) == {f"daemon-{d.name}" for d in all_daemons()}
    assert {f"daemon-{d.name}" for d in control_plane_daemons()} < set(snapd.daemons)
    took = node.wait_ready()
    print(f"node Ready {took:.1f} s after the daemon apps started")
    node.kubectl_apply_when_accounts_exist(WEB)
    proc = node.run("kubectl", "wait", "--for=condition=Ready", "pod/web", "--timeout=180s",
                    timeout=200, check=False)
    assert proc.returncode == 0, proc.stderr + snapd.log_tail()
    pod_ip = node.kubectl_json("get", "pod", "web")["status"]["podIP"]
    assert node.fetch(f"http://{pod_ip}:8080/").strip() == "hello from the snap"
    cluster_ip = node.kubectl_json("get", "service", "web")["spec"]["clusterIP"]
    assert node.fetch(f"http://{cluster_ip}/").strip() == "hello from the snap"
    # NetworkPolicy is enforced with the snap's own ipset, which finds its library in the snap.
    node.wait_for("kubelite's netpol part Ready", lambda: yaml.safe_load(node.run(
        "status", "--format", "yaml").stdout)["daemons"]["netpol"] == "ready", timeout=60)
    node.run("kubectl", "apply", "-f", "-", input=WEB_OPEN)
    ipset = snapd.snap_dir() / "bin" / "ipset"
    # A static shell runs the launcher, so the loader lists ipset's libraries, not the shell's.
    linked = subprocess.run(["busybox", "sh", str(ipset)], capture_output=True, text=True,
                            env={"LD_TRACE_LOADED_OBJECTS": "1"}, timeout=30, check=True).stdout
    lib = next(line for line in linked.splitlines() if "libipset.so" in line)
    assert str(snapd.snap_dir().resolve()) in lib, linked
    # The controller runs it (the snap's bin/ comes first on its PATH) to make the policy's
    # sets, which the remove hook takes away again.
    netpol = snapd.daemons["daemon-kubelite"].proc  # the policy controller is its part
    assert netpol is not None
    environ = dict(v.split("=", 1) for v in Path(f"/proc/{netpol.pid}/environ").read_text()
                   .split("\0") if "=" in v)
    found = shutil.which("ipset", path=environ["PATH"])
    assert found and Path(found).resolve() == ipset.resolve(), environ["PATH"]
    node.wait_for("the policy's ipsets", lambda: "KUBE-DST-" in subprocess.run(
        snapd.in_netns([str(ipset), "list", "-n"]), capture_output=True, text=True, timeout=30,
        check=True).stdout, timeout=60)
    assert node.fetch(f"http://{pod_ip}:8080/").strip() == "hello from the snap"
    # Every daemon process runs from the snap's read-only tree.
    for d in snapd.daemons.values():
        assert d.proc is not None
        exe = Path(os.readlink(f"/proc/{d.proc.pid}/exe"))
        assert exe.is_relative_to(snapd.snap_dir().resolve()), (d.app, exe)


def _max_pods(node: SnapNode) -> str:
    return str(node.kubectl_json("get", "node", NAME)["status"]["capacity"]["pods"])


def test_the_launch_option_enables_its_addon_and_a_change_applies(node: SnapNode) -> None:
    snapd = node.snapd
    # No `microkube start` ran: the deployer enabled the addon of the launch configuration.
    node.wait_for("hostpath-storage enabled by the snap's deployer",
                  lambda: "hostpath-storage" in status_addons(node)["enabled"], timeout=180)
    assert _max_pods(node) == "50"
    kubelite = snapd.daemons["daemon-kubelite"].proc
    assert kubelite is not None
    # A node-shaping key that differs is refused whole, in one line.
    snapd.options["config"] = LAUNCH.replace("50", "60") + "nodeName: another-name\n"
    proc = snapd.run_hook("configure")
    assert proc.returncode != 0
    assert proc.stderr.strip() == (f"Error: config: nodeName: cannot change once the node is "
                                   f"set up (it is {NAME})")
    assert "--max-pods=50" in (snapd.data_dir() / "args" / "kubelet").read_text()
    # A flag change is written and kubelite restarts to read it.
    snapd.options["config"] = LAUNCH.replace("50", "60")
    proc = snapd.run_hook("configure")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "restarted kubelite" in proc.stdout
    restarted = snapd.daemons["daemon-kubelite"].proc
    assert restarted is not None and restarted.pid != kubelite.pid
    node.wait_for("the Node's pod capacity from the new flag", lambda: _max_pods(node) == "60",
                  timeout=120)
    node.wait_ready()


def test_refresh_keeps_data_and_certificates(node: SnapNode) -> None:
    snapd = node.snapd
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
    node.wait_ready()
    # The datastore came along: the pod made before the refresh is still there.
    assert node.kubectl_json("get", "pod", "web")["metadata"]["name"] == "web"


def test_remove_hook_leaves_nothing_behind(node: SnapNode) -> None:
    snapd = node.snapd
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
    sets = subprocess.run(snapd.in_netns(["ipset", "list", "-n"]), capture_output=True,
                          text=True, check=True).stdout
    assert "KUBE-" not in sets, sets
    assert not any((h / CGROUP_ROOT.strip("/")).exists() for h in CGROUP_FS.iterdir())
