"""A real single node: Ready, workloads, services, restarts, clean stop.

The tests share one node and run in file order: each leaves it as the
next one expects (running, with the 'web' Deployment in place).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from microkube.images.names import BUSYBOX_IMAGE
from tests.e2e.addon_support import http_get
from tests.testnode import TestNode
from tests.workloads import client_pod, web_deployment

pytestmark = pytest.mark.e2e

WEB = web_deployment("web", "hello from $(hostname)", replicas=2)

CLIENT = client_pod("client")


def _node_ready(node: TestNode) -> bool:
    nodes = node.kubectl_json("get", "nodes")["items"]
    return any(c["type"] == "Ready" and c["status"] == "True"
               for n in nodes for c in n["status"]["conditions"])


def _web_available(node: TestNode) -> None:
    node.kubectl("rollout", "status", "deployment/web", "--timeout=180s", timeout=200)


def test_start_gives_a_ready_node(node: TestNode) -> None:
    st = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    assert st["microkube"] == {"running": True, "ready": True, "state": "ready", "message": ""}
    assert st["node"] == "mk-e2e"
    assert all(state == "ready" for state in st["daemons"].values()), st["daemons"]
    assert _node_ready(node)
    version = node.kubectl_json("version")
    assert version["serverVersion"]["gitVersion"].startswith("v1.")


# Fetches the CA from the agent as a joiner does, trusting nothing yet, and prints its SHA-256.
_FETCH_CA = """
import hashlib, ssl, sys, urllib.request
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
pem = urllib.request.urlopen(f"https://{sys.argv[1]}/v1/ca", context=ctx, timeout=10).read()
print(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode())).hexdigest())
"""


def test_add_node_join_string_reaches_the_agent_and_pins_its_ca(node: TestNode) -> None:
    doc = json.loads(node.run("add-node", "--format", "json").stdout)
    address = doc["join_strings"][0].split("/")[0]
    assert address == f"{node.ip}:25000"
    proc = subprocess.run(node.in_netns([sys.executable, "-c", _FETCH_CA, address]),
                          capture_output=True, text=True, timeout=30, check=True)
    assert proc.stdout.strip() == doc["fingerprint"]


def test_deployment_serves_through_a_cluster_ip(node: TestNode) -> None:
    node.apply(WEB)
    _web_available(node)
    node.apply(CLIENT)
    node.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s", timeout=150)
    ip = node.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").strip()
    pods = node.kubectl("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}")
    expected = {f"hello from {pod}" for pod in pods.split()}
    assert len(expected) == 2, pods
    bodies = set()
    # Each request picks a replica at random: 40 tries all miss one with odds of 2^-39.
    # (Debian's busybox wget crashes with -T; the subprocess timeout bounds the wait instead.)
    for _ in range(40):
        out = node.kubectl("exec", "client", "--", "wget", "-qO-", f"http://{ip}/", timeout=30)
        bodies.add(out.strip())
        if bodies >= expected:
            break
    assert bodies == expected  # both replicas answered, and nothing else did


def test_logs_and_exec(node: TestNode) -> None:
    assert "client started" in node.kubectl("logs", "client")
    assert node.kubectl("exec", "client", "--", "hostname").strip() == "client"
    proc = node.run("kubectl", "exec", "client", "--", "sh", "-c", "exit 3", check=False)
    assert proc.returncode == 3  # exit codes pass through microkube kubectl


def test_user_without_rbac_rights_is_refused(node: TestNode) -> None:
    node.kubectl("create", "serviceaccount", "nobody")
    token = node.kubectl("create", "token", "nobody").strip()
    ca = node.root / "data" / "certs" / "ca.crt"
    proc = node.run("kubectl", "--kubeconfig=/dev/null", "--server=https://127.0.0.1:16443",
                    f"--certificate-authority={ca}", f"--token={token}", "get", "pods",
                    check=False)
    assert proc.returncode != 0
    assert "forbidden" in proc.stderr.lower()
    # No credentials at all: the API server answers (TLS verified against our CA) and refuses.
    status, body = http_get(node, "https://127.0.0.1:16443/api/v1/namespaces/default/pods",
                            verify_ca=str(ca))
    assert status == 403, body
    assert 'User "system:anonymous" cannot list resource "pods"' in json.loads(body)["message"]


def test_objects_survive_stop_and_start(node: TestNode) -> None:
    node.run("stop")
    assert node.supervisor_state() is None
    node.start()
    _web_available(node)
    node.kubectl("get", "serviceaccount", "nobody")


@pytest.mark.parametrize("daemon", ["etcd", "containerd", "kubelite", "cluster-agent"])
def test_killed_daemon_is_restarted(node: TestNode, daemon: str) -> None:
    state = node.supervisor_state()
    assert state is not None
    old_pid = state["daemons"][daemon]["pid"]
    assert old_pid
    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> bool:
        st = node.supervisor_state() or {}
        d = st.get("daemons", {}).get(daemon, {})
        return bool(d.get("pid") not in (None, old_pid) and d.get("state") == "ready")

    node.wait_for(f"{daemon} to be restarted", restarted, timeout=120, every=0.5)
    node.wait_for("the node to be Ready", lambda: _node_ready(node), timeout=120)
    # kubelite's network parts come back with it.
    node.run("status", "--wait-ready", "--timeout", "120", timeout=150)
    st = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    assert st["daemons"]["flanneld"] == st["daemons"]["netpol"] == "ready", st["daemons"]
    _web_available(node)


@pytest.mark.parametrize("part", ["kube-scheduler", "flanneld"])
def test_a_failed_part_of_kubelite_is_named_and_an_args_edit_applies(node: TestNode,
                                                                      part: str) -> None:
    # A user breaks one daemon's argument file and restarts: kubelite, which runs every
    # Kubernetes daemon and the pod network, exits, and status names the part that failed.
    args = node.root / "data" / "args" / part
    before = args.read_text()
    args.write_text(before + "--no-such-flag=1\n")
    state = node.supervisor_state()
    assert state is not None
    os.kill(state["daemons"]["kubelite"]["pid"], signal.SIGTERM)
    try:
        def named() -> bool:
            st = yaml.safe_load(node.run("status", "--format", "yaml", check=False).stdout)
            return f"{part} failed" in str(st.get("daemons", {}).get("kubelite", ""))

        node.wait_for("status to name the failed part", named, timeout=60, every=0.3)
        st = yaml.safe_load(node.run("status", "--format", "yaml", check=False).stdout)
        assert "no-such-flag" in st["daemons"]["kubelite"]
    finally:
        args.write_text(before)
    node.run("status", "--wait-ready", "--timeout", "120", timeout=150)
    st = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    assert st["daemons"]["kubelite"] == st["daemons"]["flanneld"] == "ready", st["daemons"]
    _web_available(node)


def test_crashed_supervisor_is_cleaned_up_by_the_next_start(node: TestNode) -> None:
    state = node.supervisor_state()
    assert state is not None
    os.kill(state["pid"], signal.SIGKILL)  # leaves its daemons and pods orphaned
    node.start()
    new = node.supervisor_state()
    assert new is not None and new["pid"] != state["pid"]
    old_pids = [d["pid"] for d in state["daemons"].values()]
    assert not any(_alive(p) for p in old_pids), "daemons of the killed run survived"
    _web_available(node)


def test_config_inspect_version_and_images(node: TestNode, tmp_path: Path) -> None:
    kubeconfig = yaml.safe_load(node.run("config").stdout)
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://10.213.0.2:16443"
    loopback = yaml.safe_load(node.run("config", "-l").stdout)
    assert loopback["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:16443"

    versions = dict(line.split(None, 1) for line in node.run("version").stdout.splitlines())
    assert versions["kubernetes"].startswith("v1.")
    assert versions["containerd"].startswith("v2.")

    report = tmp_path / "report.tar.gz"
    node.run("inspect", "--output", str(report))
    with tarfile.open(report) as tar:
        names = tar.getnames()
    assert {"status.yaml", "versions.json"} <= set(names)
    assert any(n.startswith("logs/") and n.endswith("kubelite.log") for n in names)
    assert any(n.startswith("args/") and n.endswith("kube-apiserver") for n in names)

    exported = tmp_path / "images"
    node.run("images", "export-local", str(exported))
    busybox = [p for p in exported.iterdir() if "busybox" in p.name]
    assert busybox, list(exported.iterdir())
    node.run("ctr", "images", "rm", BUSYBOX_IMAGE)
    assert BUSYBOX_IMAGE not in node.run("ctr", "images", "ls", "-q").stdout
    node.run("images", "import", str(busybox[0]))
    assert BUSYBOX_IMAGE in node.run("ctr", "images", "ls", "-q").stdout


def test_reset_gives_a_fresh_cluster_and_keeps_certificates(node: TestNode) -> None:
    ca = (node.root / "data" / "certs" / "ca.crt").read_bytes()
    node.run("reset", "--yes", timeout=400)
    node.run("status", "--wait-ready", "--timeout", "180", timeout=200)
    assert node.kubectl("get", "deployments", "-o", "name").strip() == ""
    assert (node.root / "data" / "certs" / "ca.crt").read_bytes() == ca
    assert _node_ready(node)


def test_stop_leaves_no_process_and_no_mount(node: TestNode) -> None:
    node.run("stop")
    assert node.processes() == []
    assert node.mounts() == []
    proc = node.run("status", check=False)
    # One line on stdout, as MicroK8s prints it; the exit status says it is not running.
    assert proc.returncode == 3
    assert proc.stdout.strip().count("\n") == 0 and "not running" in proc.stdout
    assert proc.stderr == ""
    node.start()  # leave it running for whatever comes next


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


