"""A real single node renews its certificates and rotates its CA with its workloads untouched.

``refresh-certs`` restarts only the daemons that read a rewritten file: pods keep
their UIDs, container IDs and restart counts, and containerd and etcd keep their
pids. ``refresh-certs --cert ca.crt`` replaces the CA: the old admin kubeconfig is
refused afterwards, a service-account token made before still works (its key is
kept), and the controller publishes the new CA to the namespaces.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from microkube.paths import Ports
from tests import workloads
from tests.testnode import SNAP_TREE, TestNode
from tests.untouched import daemon_pids, pods_fingerprint, serial, served_certificate

KEEPER = "keeper"


def _data(node: TestNode) -> Path:
    return node.root / "data"


def _pods_settled(node: TestNode) -> dict[str, object]:
    pods = pods_fingerprint(node)
    return pods if pods and all(containers for _, containers in pods.values()) else {}


def _kubectl_with(node: TestNode, *args: str) -> subprocess.CompletedProcess[str]:
    argv = node.in_netns([str(SNAP_TREE / "bin" / "kubectl"), *args])
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_refresh_certs_restarts_only_the_readers_and_keeps_the_pods(node: TestNode) -> None:
    node.apply(workloads.client_pod(KEEPER))
    node.wait_for("the keeper pod Running", lambda: f"{KEEPER} started" in node.kubectl(
        "logs", KEEPER), timeout=120)
    pods = node.wait_for("every pod has its containers", lambda: _pods_settled(node))
    pids = daemon_pids(node)
    server = _data(node) / "certs" / "server.crt"
    before = serial(server)

    out = node.run("refresh-certs", timeout=300)
    assert "on this node (mk-e2e, control-plane): renewed: admin.config" in out.stdout
    assert "restarted kubelite (" in out.stdout and "containerd and the pods kept running" \
        in out.stdout, out.stdout
    assert serial(server) != before
    node.run("status", "--wait-ready", "--timeout", "120", timeout=150)
    after = daemon_pids(node)
    # Neither the runtime nor etcd (which reloads its certificate at every handshake) restarted.
    assert after["containerd"] == pids["containerd"]
    assert after["etcd"] == pids["etcd"]
    for reader in ("kubelite", "cluster-agent"):
        assert after[reader] != pids[reader], reader
    # etcd serves its new certificate without a restart.
    etcd_file = serial(_data(node) / "certs" / "etcd" / "server.crt")
    assert served_certificate(node, Ports().datastore_client).serial_number == etcd_file
    assert pods_fingerprint(node) == pods


def test_rotating_the_ca_refuses_the_old_admin_and_keeps_the_workloads(
        node: TestNode, tmp_path: Path) -> None:
    data = _data(node)
    old_admin = tmp_path / "old-admin.config"
    old_admin.write_bytes((data / "credentials" / "admin.config").read_bytes())
    old_ca = (data / "certs" / "ca.crt").read_bytes()
    token = node.kubectl("create", "token", "default", "--duration", "1h").strip()
    node.wait_for("every pod has its containers", lambda: _pods_settled(node))
    pods = pods_fingerprint(node)
    pids = daemon_pids(node)

    # Bad input first: one line, nothing changed.
    bad = node.run("refresh-certs", "--cert", "ca.crt", "--cert", "server.crt", check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert (data / "certs" / "ca.crt").read_bytes() == old_ca

    out = node.run("refresh-certs", "--cert", "ca.crt", timeout=300)
    assert "renewed: admin.config" in out.stdout and "ca.crt" in out.stdout, out.stdout
    new_ca = (data / "certs" / "ca.crt").read_bytes()
    assert new_ca != old_ca
    node.run("status", "--wait-ready", "--timeout", "120", timeout=150)

    # The old admin kubeconfig is refused: its CA does not match the server's, and even
    # trusting the server, its client certificate is not the new CA's.
    refused = _kubectl_with(node, f"--kubeconfig={old_admin}", "get", "pods")
    assert refused.returncode != 0
    trusting = yaml.safe_load(old_admin.read_text())
    del trusting["clusters"][0]["cluster"]["certificate-authority-data"]
    trusting["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
    old_admin.write_text(yaml.safe_dump(trusting))
    skip_verify = _kubectl_with(node, f"--kubeconfig={old_admin}", "get", "pods")
    assert skip_verify.returncode != 0 and "Unauthorized" in skip_verify.stderr, skip_verify
    # A service-account token made before still authenticates: its signing key was kept.
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(new_ca)
    empty = tmp_path / "empty.config"
    empty.write_text("")
    with_token = _kubectl_with(node, f"--kubeconfig={empty}", "--server=https://127.0.0.1:16443",
                               f"--certificate-authority={ca_file}", f"--token={token}",
                               "get", "--raw", "/api")
    assert with_token.returncode == 0, with_token.stderr
    # The controller publishes the new CA to every namespace for the pods.
    node.wait_for("kube-root-ca.crt carries the new CA", lambda: node.kubectl_json(
        "get", "configmap", "kube-root-ca.crt")["data"]["ca.crt"].strip() == new_ca.decode()
        .strip(), timeout=120)
    after = daemon_pids(node)
    assert after["containerd"] == pids["containerd"] and after["etcd"] == pids["etcd"]
    assert pods_fingerprint(node) == pods
