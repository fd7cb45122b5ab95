"""The API load balancer (components/apilb): its Go tests, and the built binary in front of
three HTTPS servers that stand in for API servers (loopback only).

The stand-ins answer /readyz, the `kubernetes` EndpointSlices and /whoami, over TLS from a
test CA whose serving certificates hold 127.0.0.1, as the API servers' do. Every process
started here is stopped by its pid.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path

import pytest

from microkube.components.manifest import COMPONENTS_DIR
from microkube.gotoolchain import toolchain
from microkube.paths import Paths
from microkube.pki.ca import create_ca
from microkube.pki.certs import LeafSpec, Usage, cert_pem
from microkube.pki.keys import new_key, private_pem
from microkube.pki.kubeconfig import render_kubeconfig
from tests.stubserver import QuietHandler
from tests.testnode import require_built, wait_for

pytestmark = pytest.mark.components

BINARY = Paths.from_env().binary("apilb")


def test_go_tests_of_the_balancer_pass() -> None:
    """Failover, closing a dead server's connections, the fallback, a list never emptied;
    under the race detector when a C compiler is there for it (it needs cgo)."""
    go = toolchain()
    race = shutil.which("gcc") is not None
    env = {**go.env(cgo=race), "GOPROXY": "off"}  # standard library only: nothing to fetch
    out = subprocess.run([go.go, "test", "-count=1", *(["-race"] if race else []), "."],
                         cwd=COMPONENTS_DIR / "apilb", env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


class _Api:
    """One stand-in API server on 127.0.0.1."""

    def __init__(self, name: str, context: ssl.SSLContext, peers: list[_Api]) -> None:
        self.name = name
        self.peers = peers
        self.list_empty = False
        self.clients_with_certs = 0
        self.dead = threading.Event()
        api = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if api.dead.is_set():
                    time.sleep(30)  # never answers; the connection stays open
                    return
                if self.connection.getpeercert():  # type: ignore[attr-defined]
                    api.clients_with_certs += 1
                if self.path == "/readyz":
                    body = b"ok"
                elif self.path.startswith("/apis/discovery.k8s.io/v1/namespaces/default/"
                                          "endpointslices"):
                    items = [] if api.list_empty else [
                        {"endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
                         "ports": [{"name": "https", "port": p.port, "protocol": "TCP"}]}
                        for p in api.peers]
                    body = json.dumps({"items": items}).encode()
                elif self.path == "/whoami":
                    body = api.name.encode()
                else:
                    self.send_error(404)
                    return
                self.reply(200, body)


        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """Stop accepting; connections already open stay open, silent (as after power loss):
        no answer, no FIN, no RST."""
        self.dead.set()
        self.server.shutdown()
        self.server.socket.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = create_ca("test-ca")
    files = {"ca": tmp_path / "ca.crt"}
    files["ca"].write_bytes(ca.cert_pem)
    for name, usage in (("server", Usage.SERVER), ("client", Usage.CLIENT)):
        key = new_key()
        spec = LeafSpec(f"test-{name}", usage, ip_addresses=(ip_address("127.0.0.1"),))
        files[f"{name}.crt"] = tmp_path / f"{name}.crt"
        files[f"{name}.key"] = tmp_path / f"{name}.key"
        files[f"{name}.crt"].write_bytes(cert_pem(ca.issue(spec, key.public_key())))
        files[f"{name}.key"].write_bytes(private_pem(key))
    files["kubeconfig"] = tmp_path / "proxy.config"
    files["kubeconfig"].write_text(render_kubeconfig(
        server="https://127.0.0.1:1", ca=ca.cert_pem, user="proxy",
        cert=files["client.crt"].read_bytes(), key=files["client.key"].read_bytes()))
    return files


@pytest.fixture
def apis(pki: dict[str, Path]) -> Iterator[list[_Api]]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca"]))
    ctx.load_cert_chain(pki["server.crt"], pki["server.key"])
    ctx.verify_mode = ssl.CERT_OPTIONAL
    peers: list[_Api] = []
    peers += [_Api(n, ctx, peers) for n in ("a", "b", "c")]
    yield peers
    for p in peers:
        p.server.server_close()


def test_the_balancer_passes_tls_through_learns_the_list_and_fails_over(
        tmp_path: Path, pki: dict[str, Path], apis: list[_Api]) -> None:
    require_built(BINARY)
    port = _free_port()
    servers_file, state_file = tmp_path / "api-servers.json", tmp_path / "apilb.json"
    first = apis[0]
    proc = subprocess.Popen(
        [str(BINARY), f"--listen=127.0.0.1:{port}", f"--servers-file={servers_file}",
         f"--state-file={state_file}", f"--kubeconfig={pki['kubeconfig']}",
         f"--fallback={first.addr}", "--check-interval=200ms", "--check-timeout=500ms",
         "--refresh-interval=300ms"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = ssl.create_default_context(cafile=str(pki["ca"]))
        client.load_cert_chain(pki["client.crt"], pki["client.key"])

        def ask(conn: http.client.HTTPSConnection) -> str:
            conn.request("GET", "/whoami")
            return conn.getresponse().read().decode()

        def connect() -> http.client.HTTPSConnection:
            return http.client.HTTPSConnection("127.0.0.1", port, context=client, timeout=5)

        def state() -> dict[str, object]:
            return dict(json.loads(state_file.read_text()))

        # Started from the join address alone; the list comes from the EndpointSlices.
        wait_for("the balancer to serve", state_file.exists, timeout=10, every=0.1)
        wait_for("the learned list", lambda: len(json.loads(servers_file.read_text())
                                                  ["servers"]) == 3, timeout=10, every=0.1)
        assert sorted(json.loads(servers_file.read_text())["servers"]) == sorted(
            a.addr for a in apis)
        assert first.clients_with_certs > 0  # it authenticates as the kubeconfig's user

        held = connect()  # TLS from the client to the API server, verified for 127.0.0.1
        current = ask(held)
        assert state()["current"] == next(a.addr for a in apis if a.name == current)

        # An empty answer never empties the list.
        for a in apis:
            a.list_empty = True
        time.sleep(1.0)
        assert len(json.loads(servers_file.read_text())["servers"]) == 3

        dead = next(a for a in apis if a.name == current)
        killed = time.monotonic()
        dead.kill()
        # The held connection is closed by the balancer, not by the silent server.
        try:
            ask(held)
            pytest.fail("the dead server answered")
        except TimeoutError:
            pytest.fail("the connection to the dead server was not closed within 5 s")
        except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError, OSError):
            pass
        wait_for("a new server in use", lambda: state()["current"] not in ("", dead.addr),
                 timeout=5, every=0.05)
        took = time.monotonic() - killed
        assert took < 5.0
        fresh = connect()
        assert ask(fresh) in {a.name for a in apis} - {dead.name}
        assert dead.addr not in state()["healthy"]  # type: ignore[operator]
        fresh.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out.decode()[-2000:]
