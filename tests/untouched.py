"""What "the workloads were not touched" means in a test, and how certificates on a test node
are read: pods' UIDs, container IDs and restart counts; the daemons' pids; a file's serial."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509

from microkube.pki.kubeconfig import read_kubeconfig
from tests.testnode import TestNode


def pods_fingerprint(node: TestNode) -> dict[str, tuple[str, tuple[tuple[str, int], ...]]]:
    """Every pod of every namespace: name -> (UID, ((container ID, restart count), ...))."""
    doc = node.kubectl_json("get", "pods", "-A")
    found = {}
    for pod in doc["items"]:
        meta = pod["metadata"]
        statuses = pod["status"].get("containerStatuses") or []
        containers = tuple(sorted((c.get("containerID", ""), int(c.get("restartCount", 0)))
                                  for c in statuses))
        found[f"{meta['namespace']}/{meta['name']}"] = (meta["uid"], containers)
    return found


def daemon_pids(node: TestNode) -> dict[str, int | None]:
    """Each daemon's pid, from the node's supervisor."""
    state = node.supervisor_state()
    assert state is not None, f"{node.name} runs no supervisor"
    return {name: d.get("pid") for name, d in state["daemons"].items()}


def certificate(path: Path) -> x509.Certificate:
    """The certificate in a ``.crt`` file, or the client certificate of a kubeconfig."""
    if path.suffix == ".config":
        cert = read_kubeconfig(path).client_cert()
        assert cert is not None, f"{path} has no client certificate"
        return cert
    return x509.load_pem_x509_certificate(path.read_bytes())


def serial(path: Path) -> int:
    return certificate(path).serial_number


def served_certificate(node: TestNode, port: int) -> x509.Certificate:
    """The certificate a TLS server on the node's loopback ``port`` presents (not verified)."""
    code = ("import ssl,sys; sys.stdout.write(ssl.get_server_certificate(('127.0.0.1', "
            f"{port})))")
    proc = subprocess.run(node.in_netns(["python3", "-c", code]), capture_output=True,
                          text=True, timeout=30, check=True)
    return x509.load_pem_x509_certificate(proc.stdout.encode())
