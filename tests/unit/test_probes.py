"""The HTTP probe (microkube/probes.py) against real loopback servers: plain HTTP, TLS,
a chunked answer, a closed port and a server that does not speak HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from microkube.probes import http_get, http_json, http_request, tcp_accepts


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}' if self.path == "/readyz" else b"not here"
        self.send_response(200 if self.path == "/readyz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_DELETE(self) -> None:
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_status_and_body_of_a_real_server(server: str) -> None:
    assert http_get(f"{server}/readyz") == (200, b'{"ok": true}')
    assert http_get(f"{server}/other")[0] == 404
    assert http_json(f"{server}/readyz") == {"ok": True}
    assert http_request("DELETE", f"{server}/x")[0] == 202


def test_nothing_listening_is_status_zero() -> None:
    port = _free_port()
    assert http_get(f"http://127.0.0.1:{port}/readyz") == (0, b"")
    assert not tcp_accepts("127.0.0.1", port)


def test_garbage_after_a_tcp_accept_is_not_a_status() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]

        def answer() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        assert http_get(f"http://127.0.0.1:{port}/") == (0, b"")
        thread.join(timeout=5)


def test_tls_without_a_tls_server_is_status_zero(server: str) -> None:
    assert http_get(server.replace("http://", "https://") + "/readyz") == (0, b"")


def test_the_api_port_read_without_yaml_is_the_one_yaml_reads(tmp_path: Path) -> None:
    from dataclasses import replace

    from microkube.config import node
    from microkube.node.guard import api_port
    from microkube.paths import Paths

    paths = Paths.from_env({"MICROKUBE_ROOT": str(tmp_path)})
    config = node.detect({"MICROKUBE_NODE_NAME": "unit", "MICROKUBE_NODE_IP": "192.0.2.10"})
    node.save(paths.state_file, replace(config, api_port=17443))
    assert api_port(paths) == 17443 == node.load(paths.state_file).api_port
    # A hand-written flow mapping is not the saved form: YAML reads it.
    paths.state_file.write_text("{" + paths.state_file.read_text().strip()
                                .replace("\n", ", ") + "}\n")
    assert api_port(paths) == 17443


def test_accept_probes_by_address_by_name_and_on_a_unix_socket(tmp_path: Path) -> None:
    from microkube.probes import unix_socket_accepts

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        assert tcp_accepts("127.0.0.1", port)
        assert tcp_accepts("localhost", port)  # a name: resolved, each address tried
    assert not tcp_accepts("no-such-host.invalid", port)
    path = tmp_path / "sock"
    assert not unix_socket_accepts(path)
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(str(path))
        srv.listen()
        assert unix_socket_accepts(path)
