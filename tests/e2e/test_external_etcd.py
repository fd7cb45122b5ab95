"""A node on an external etcd cluster (``datastore: https://…``), over mutual TLS.

The test runs a real etcd (the one microkube bundles, started on its own) in the node's
network namespace, on loopback ports of its own, requiring client certificates from a
test CA. The node comes up from a launch file that names the endpoint and the TLS files;
it runs no datastore daemon of its own; its objects are keys in that etcd (a Secret as
ciphertext); they survive a restart of the node. A launch file without the client
certificate is refused at start with one line, and nothing is left behind.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from microkube.datastore import encryption
from microkube.paths import Paths
from tests.testnode import SNAP_TREE, TestNode, require_root_and_node_built

pytestmark = pytest.mark.e2e

# Ports of the test's own etcd: away from the node's (paths.Ports), so both could run.
CLIENT_PORT, PEER_PORT = 23790, 23800
ENDPOINT = f"https://127.0.0.1:{CLIENT_PORT}"
SECRET_KEY = "/registry/secrets/default/ext-pass"


def _tls_files(folder: Path) -> dict[str, Path]:
    """A test CA, the etcd server's pair (for 127.0.0.1) and a client pair it signed."""
    from microkube.pki.ca import create_ca
    from microkube.pki.certs import LeafSpec, Usage, cert_pem
    from microkube.pki.keys import new_key, private_pem

    ca = create_ca("microkube-test-external-etcd-ca")
    files = {"ca": folder / "ca.crt"}
    files["ca"].write_bytes(ca.cert_pem)
    for name, spec in (
            ("server", LeafSpec("external-etcd", Usage.SERVER,
                                ip_addresses=(ipaddress.ip_address("127.0.0.1"),))),
            ("client", LeafSpec("microkube-node", Usage.CLIENT))):
        key = new_key()
        files[f"{name}-cert"] = folder / f"{name}.crt"
        files[f"{name}-key"] = folder / f"{name}.key"
        files[f"{name}-cert"].write_bytes(cert_pem(ca.issue(spec, key.public_key())))
        files[f"{name}-key"].write_bytes(private_pem(key))
        files[f"{name}-key"].chmod(0o600)
    return files


@contextmanager
def _external_etcd(node: TestNode, folder: Path, tls: dict[str, Path]) -> Iterator[None]:
    """etcd in the node's namespace until the block ends (stopped by its pid)."""
    argv = node.in_netns([
        str(SNAP_TREE / "bin" / "etcd"), "--name=external", f"--data-dir={folder / 'data'}",
        f"--listen-client-urls={ENDPOINT}", f"--advertise-client-urls={ENDPOINT}",
        f"--listen-peer-urls=http://127.0.0.1:{PEER_PORT}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{PEER_PORT}",
        f"--initial-cluster=external=http://127.0.0.1:{PEER_PORT}",
        "--client-cert-auth", f"--trusted-ca-file={tls['ca']}",
        f"--cert-file={tls['server-cert']}", f"--key-file={tls['server-key']}",
        "--log-level=warn"])
    with (folder / "etcd.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        node.wait_for("the external etcd to serve",
                      lambda: _etcdctl(node, tls, "endpoint", "health").returncode == 0,
                      timeout=30)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _etcdctl(node: TestNode, tls: dict[str, Path],
             *args: str) -> subprocess.CompletedProcess[bytes]:
    """etcdctl against the external etcd, with the node's client pair."""
    argv = node.in_netns([str(SNAP_TREE / "bin" / "etcdctl"), f"--endpoints={ENDPOINT}",
                          f"--cacert={tls['ca']}", f"--cert={tls['client-cert']}",
                          f"--key={tls['client-key']}", "--command-timeout=5s", *args])
    return subprocess.run(argv, capture_output=True, timeout=30)


def _launch(folder: Path, name: str, tls: dict[str, Path], with_client_pair: bool) -> Path:
    store: dict[str, str] = {"endpoint": ENDPOINT, "caFile": str(tls["ca"])}
    if with_client_pair:
        store |= {"certFile": str(tls["client-cert"]), "keyFile": str(tls["client-key"])}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"version": "0.1.0", "datastore": store}))
    return path


def test_a_node_on_an_external_etcd_cluster(tmp_path_factory: pytest.TempPathFactory) -> None:
    require_root_and_node_built()
    started = time.monotonic()
    tmp = Path(tmp_path_factory.mktemp("ext-etcd"))
    folder = tmp / "etcd"
    folder.mkdir()
    tls = _tls_files(folder)
    node = TestNode(name="mk-ext", root=tmp / "root", ip="10.213.34.2",
                    netns=f"mk-ds-ext-{os.getpid()}")
    node.create_netns()
    try:
        with _external_etcd(node, folder, tls):
            # Without its client pair the node cannot reach the store: one line, no node.
            bad = node.run("start", "--config", str(_launch(tmp, "no-pair", tls, False)),
                           check=False, timeout=120)
            lines = bad.stderr.strip().splitlines()
            assert bad.returncode != 0 and len(lines) == 1, bad.stderr
            assert ENDPOINT in lines[0], lines[0]
            assert not (node.root / "data" / "var" / "node.yaml").exists()

            node.run("start", "--config", str(_launch(tmp, "good", tls, True)),
                     "--wait-ready", "--timeout", "240", timeout=300)
            st = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
            assert st["datastore"]["kind"] == "external-etcd"
            assert "etcd" not in st["daemons"] and "kine" not in st["daemons"], st["daemons"]
            names = set(node.named())
            assert "etcd" not in names and "kine" not in names, names
            kept = node.root / "data" / "credentials" / "datastore"
            assert {p.name for p in kept.iterdir()} >= {"ca.crt", "client.crt", "client.key"}
            assert (kept / "client.key").stat().st_mode & 0o777 == 0o600

            node.kubectl("create", "configmap", "ext-notes", "--from-literal=a=1")
            node.kubectl("create", "secret", "generic", "ext-pass",
                         "--from-literal=password=hunter2-plain")
            got = _etcdctl(node, tls, "get", "--keys-only",
                           "/registry/configmaps/default/ext-notes")
            assert b"/registry/configmaps/default/ext-notes" in got.stdout, got.stderr
            raw = _etcdctl(node, tls, "get", "--print-value-only", SECRET_KEY).stdout
            key = encryption.read_keys(Paths.from_env(node.env).encryption_config)[0].name
            assert raw.startswith(encryption.ciphertext_prefix(key)), raw[:40]
            assert b"hunter2-plain" not in raw

            node.stop()
            node.start()
            assert node.kubectl("get", "configmap", "ext-notes",
                                "-o", "jsonpath={.data.a}") == "1"
            assert node.kubectl("get", "secret", "ext-pass", "-o",
                                "jsonpath={.data.password}") == "aHVudGVyMi1wbGFpbg=="
            node.stop()  # the node lets go of the store before the store stops
    finally:
        node.destroy()
    print(f"external etcd: {time.monotonic() - started:.0f} s")
