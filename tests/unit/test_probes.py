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


def _raw_server(answers: list[bytes]) -> tuple[int, list[bytes], threading.Thread]:
    """A loopback server that answers each request it reads with the next of ``answers``
    (one connection per answer when an answer closes it: b"" closes without one); the
    requests it read are collected."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    seen: list[bytes] = []

    def serve() -> None:
        with srv:
            pending = list(answers)
            while pending:
                conn, _ = srv.accept()
                with conn:
                    while pending:
                        seen.append(conn.recv(65536))
                        answer = pending.pop(0)
                        if not answer:
                            break
                        conn.sendall(answer)
                        if b"Connection: close" in answer:
                            break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return srv.getsockname()[1], seen, thread


def test_chunked_kept_alive_and_reopened_once_the_server_closed_it() -> None:
    from microkube.probes import HttpConnection

    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    sized = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    # The second request's connection is closed unanswered (a kept connection timed out
    # at the server): the request goes again on a new one.
    port, seen, thread = _raw_server([chunked, b"", sized])
    conn = HttpConnection(f"http://127.0.0.1:{port}", timeout=5)
    try:
        assert conn.exchange("GET", "/a?b=1") == (200, b"hello world")
        assert conn.exchange("POST", "/c", b"{}", content_type="application/json") == (201, b"ok")
    finally:
        conn.close()
    thread.join(timeout=5)
    assert seen[0].startswith(b"GET /a?b=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}\r\n".encode() in seen[0]
    assert b"Content-Length" not in seen[0]
    assert seen[2].startswith(b"POST /c HTTP/1.1\r\n")
    assert seen[2].endswith(b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")


def test_an_answer_cut_short_or_without_a_length_is_read_as_http_says() -> None:
    from microkube.probes import http_exchange

    port, _, thread = _raw_server([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"])
    with pytest.raises(ValueError, match="not HTTP"):
        http_exchange("GET", f"http://127.0.0.1:{port}/")
    thread.join(timeout=5)
    # No length: the body ends with the connection (HTTP/1.0 style).
    port, _, thread = _raw_server([b"HTTP/1.0 404 Not Found\r\nConnection: close\r\n\r\ngone"])
    assert http_get(f"http://127.0.0.1:{port}/") == (404, b"gone")
    thread.join(timeout=5)
