"""One real cluster agent process on loopback, shared by the cluster tests.

The agent runs exactly as the supervisor starts it (``python -m
microkube.cluster.agent`` with flags), over a node root laid out in a temporary
directory, listening on 127.0.0.1 and an ephemeral port. Clients bind their
own 127.0.0.x source address, so each test's refused tokens count against an
address of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from microkube.paths import Paths
from tests.clusternode import node_env, prepare_node_root

NODE_NAME = "cp-1"
NODE_IP = "192.0.2.10"
REQUEST_TIMEOUT = 1.0
# Short: the fuzz's well-formed HTTP/1.1 requests keep their connection open this long.
IDLE_TIMEOUT = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def unverified_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def pinned_context(ca_pem: bytes) -> ssl.SSLContext:
    """TLS that trusts this CA alone: what a joiner uses once the fingerprint matched."""
    return ssl.create_default_context(cadata=ca_pem.decode())


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    """HTTPS to the agent at ``host`` from ``source`` (a 127.0.0.x address, or ::1 to reach
    the agent at ::1)."""

    port: int
    context: ssl.SSLContext
    source: str = "127.0.0.1"
    timeout: float = 10.0
    host: str = "127.0.0.1"

    def connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                           timeout=self.timeout, source_address=(self.source, 0))

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                            resp.read())
        finally:
            conn.close()

    def post(self, path: str, doc: Any) -> Response:
        return self.request("POST", path, json.dumps(doc).encode(),
                            {"Content-Type": "application/json"})

    def raw(self, data: bytes, wait: float = 5.0) -> bytes:
        """Send ``data`` as is over TLS; everything the agent answers before it closes."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=wait,
                                        source_address=(self.source, 0))
        with self.context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            tls.sendall(data)
            chunks = []
            with contextlib.suppress(OSError):
                while chunk := tls.recv(65536):
                    chunks.append(chunk)
            return b"".join(chunks)


@dataclass
class Agent:
    paths: Paths
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    ca_pem: bytes = b""
    _sources: Iterator[int] = field(default_factory=lambda: iter(range(2, 250)))

    @property
    def fingerprint(self) -> str:
        der = ssl.PEM_cert_to_DER_cert(self.ca_pem.decode())
        return hashlib.sha256(der).hexdigest()

    def client(self, source: str | None = None) -> Client:
        """A client pinned to the cluster CA, from a source address no other client has."""
        return Client(self.port, pinned_context(self.ca_pem),
                      source or f"127.0.0.{next(self._sources)}")

    def alive(self) -> bool:
        return self.proc.poll() is None


def _wait_serving(agent: Agent, log: IO[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    client = Client(agent.port, unverified_context(), timeout=1.0)
    while time.monotonic() < deadline:
        if not agent.alive():
            log.flush()
            pytest.fail(f"the agent exited: {agent.log.read_text()}")
        try:
            if client.request("GET", "/v1/ca").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the agent did not serve within {timeout} s: {agent.log.read_text()}")


@contextlib.contextmanager
def running_agent(paths: Paths, idle_timeout: float = IDLE_TIMEOUT,
                  bind_address: str | None = "127.0.0.1",
                  request_timeout: float = REQUEST_TIMEOUT) -> Iterator[Agent]:
    """The real agent process over the node root of ``paths``, on ``bind_address`` (None:
    every address, as a node's agent) and a free port, cutting off a connection idle for
    ``idle_timeout`` seconds, or a handshake, body or answer slower than ``request_timeout``;
    stopped with SIGTERM at the end, by its pid."""
    root = paths.data.parent
    port = free_port()
    log_path = root / "agent.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "microkube.cluster.agent",
             *([f"--bind-address={bind_address}"] if bind_address else []), f"--port={port}",
             f"--request-timeout={request_timeout}", f"--idle-timeout={idle_timeout}"],
            env=node_env(root), stdout=log, stderr=subprocess.STDOUT)
        agent = Agent(paths, port, proc, log_path,
                      ca_pem=(paths.certs_dir / "ca.crt").read_bytes())
        try:
            _wait_serving(agent, log)
            yield agent
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="session")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    """The real agent process of a prepared control plane (etcd), shared by the session."""
    root = tmp_path_factory.mktemp("cluster") / "root"
    with running_agent(prepare_node_root(root, NODE_NAME, NODE_IP)) as agent:
        yield agent
