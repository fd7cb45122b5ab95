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


class _KeepAliveApi(_Api):
    """The same answers over HTTP/1.1, keeping the connection: counts the connections."""

    protocol_version = "HTTP/1.1"
    connections: ClassVar[int] = 0

    def setup(self) -> None:
        _KeepAliveApi.connections += 1
        super().setup()


@pytest.fixture(params=[_Api, _KeepAliveApi], ids=["http1.0", "keep-alive"])
def server(paths: Paths, request: pytest.FixtureRequest) -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), request.param)
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


def test_requests_share_one_connection_while_the_server_keeps_it(
        paths: Paths, server: int, request: pytest.FixtureRequest) -> None:
    save(paths.state_file, NodeConfig("n1", "127.0.0.1", api_port=server))
    api = KubeApi.for_admin(paths, timeout=5)
    before = _KeepAliveApi.connections
    for _ in range(3):
        assert api.status_code("/readyz") == 404
        assert api.node_ready("n1")
    opened = _KeepAliveApi.connections - before
    # An HTTP/1.0 server closes after each answer and the client opens again (the 1.0
    # handler counts nothing); a keep-alive one serves all six requests on one connection.
    assert opened == (1 if request.node.callspec.id == "keep-alive" else 0)
    api.close()
    assert api.node_ready("n1")  # a closed client opens a connection again


def test_nothing_listening_is_not_an_error(paths: Paths, server: int) -> None:
    save(paths.state_file, NodeConfig("n1", "127.0.0.1", api_port=1))
    api = KubeApi.for_admin(paths, timeout=1)
    assert api.get("/api/v1/nodes/n1") is None
    assert api.status_code("/readyz") == 0


def test_a_node_never_set_up_is_one_line(paths: Paths) -> None:
    with pytest.raises(UsageError, match="has not been set up"):
        KubeApi.for_admin(paths)
