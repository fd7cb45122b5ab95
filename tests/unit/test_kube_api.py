"""The REST half of the Kubernetes client against a loopback HTTPS server that,
like the API server, trusts only the node's CA and wants the admin's certificate."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from microkube.config.node import NodeConfig, save
from microkube.errors import UsageError
from microkube.kube.api import KubeApi
from microkube.paths import Paths
from microkube.pki.node import ensure_node_pki
from tests.stubserver import QuietHandler

NODE = {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.1.0.0/24"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


class _Api(QuietHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        cert = self.connection.getpeercert() or {}  # type: ignore[attr-defined]
        _Api.seen.append(dict(x[0] for x in cert.get("subject", ()))["commonName"])
        body = json.dumps(NODE).encode() if self.path == "/api/v1/nodes/n1" else b"{}"
        self.reply(200 if self.path == "/api/v1/nodes/n1" else 404, body)


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common", cache=tmp_path / "c")


@pytest.fixture
def server(paths: Paths) -> Iterator[int]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Api)
    port = httpd.server_address[1]
    ensure_node_pki(certs_dir=paths.certs_dir, credentials_dir=paths.credentials_dir,
                    node_name="n1", host_ips=["127.0.0.1"], hostname="n1",
                    service_cidr="10.152.183.0/24", cluster_domain="cluster.local",
                    api_server_url=f"https://127.0.0.1:{port}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(paths.pki.server.cert, paths.pki.server.key)
    ctx.load_verify_locations(paths.pki.ca.cert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_for_admin_reads_the_node_as_admin(paths: Paths, server: int) -> None:
    save(paths.state_file, NodeConfig("n1", "127.0.0.1", api_port=server))
    api = KubeApi.for_admin(paths, timeout=5)
    assert api.server == f"https://127.0.0.1:{server}"
    assert api.get("/api/v1/nodes/n1")["spec"]["podCIDR"] == "10.1.0.0/24"
    assert api.node_ready("n1")
    assert api.get("/api/v1/nodes/other") is None
    assert api.status_code("/api/v1/nodes/other") == 404
    assert "admin" in _Api.seen


def test_nothing_listening_is_not_an_error(paths: Paths, server: int) -> None:
    save(paths.state_file, NodeConfig("n1", "127.0.0.1", api_port=1))
    api = KubeApi.for_admin(paths, timeout=1)
    assert api.get("/api/v1/nodes/n1") is None
    assert api.status_code("/readyz") == 0


def test_a_node_never_set_up_is_one_line(paths: Paths) -> None:
    with pytest.raises(UsageError, match="has not been set up"):
        KubeApi.for_admin(paths)
