"""``microkube status`` answers in every format for every state a node can be in.

Each state is made for real where no root is needed: a fresh root (never set
up), a set-up root with no supervisor (stopped), a supervisor state file that
names this live test process while nothing listens on the API port (daemons
run, API down). The two running states need an API server: a small HTTPS
stand-in serves /readyz and the Node with the node's own serving certificate.
The CLI runs as a subprocess and every format is parsed from its stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
import yaml

from microkube.addons.state import AddonState
from microkube.config import node
from microkube.paths import Paths
from microkube.services.registry import control_plane_daemons
from microkube.services.state import DaemonState, SupervisorState
from tests.stubserver import QuietHandler

NODE = "unit"
STATES = ("not-set-up", "stopped", "api-down", "not-ready", "ready")
SHORT_ADDON = re.compile(r"^  (?P<repo>[a-z0-9-]+)/(?P<name>[a-z0-9-]+): (?P<status>enabled|disabled)$")


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "MICROKUBE_"))}
    env.update({"MICROKUBE_ROOT": str(root), "MICROKUBE_NODE_NAME": NODE,
                "MICROKUBE_NODE_IP": "192.0.2.10"})
    return env


def _status(root: Path, fmt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "microkube", "status", "--format", fmt],
                          env=_env(root), capture_output=True, text=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Api(QuietHandler):
    node_ready = True

    def do_GET(self) -> None:
        if self.path == "/readyz":
            body = b"ok"
        elif self.path in (f"/api/v1/nodes/{NODE}", "/api/v1/nodes"):
            cond = {"type": "Ready", "status": "True" if self.node_ready else "False"}
            node = {"metadata": {"name": NODE}, "status": {"conditions": [cond]}}
            body = json.dumps(node if self.path.endswith(NODE) else {"items": [node]}).encode()
        else:
            self.send_error(404)
            return
        self.reply(200, body)


@contextlib.contextmanager
def _serve_api(paths: Paths, node_ready: bool) -> Iterator[None]:
    handler = type("Api", (_Api,), {"node_ready": node_ready})
    server = ThreadingHTTPServer(("127.0.0.1", _port(paths)), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(paths.certs_dir / "server.crt", paths.certs_dir / "server.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


class _Part(QuietHandler):
    def do_GET(self) -> None:
        self.reply(200, b"ok")


@contextlib.contextmanager
def _serve_network_parts(paths: Paths) -> Iterator[None]:
    """kubelite's flanneld and netpol parts, ready: their readiness endpoints (on the
    node's fixed loopback ports) and flannel's subnet file."""
    paths.flannel_subnet_file.parent.mkdir(parents=True, exist_ok=True)
    paths.flannel_subnet_file.write_text("FLANNEL_NETWORK=10.1.0.0/16\n")
    servers = [ThreadingHTTPServer(("127.0.0.1", port), _Part)
               for port in (paths.ports.flannel_healthz, paths.ports.netpol_ready)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _port(paths: Paths) -> int:
    return node.load(paths.state_file).api_port


def _set_up(root: Path) -> Paths:
    """A node set up as 'start' leaves it, its API port moved to a free loopback port."""
    env = _env(root)
    paths = Paths.from_env(env)
    code = "from microkube.node import setup; from microkube.paths import Paths; " \
           "setup.prepare(Paths.from_env())"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    node.save(paths.state_file, replace(node.load(paths.state_file), api_port=_free_port()))
    AddonState.load(paths.addons_state_file).mark_enabled("core/dns", "1.0", {}, [])
    return paths


def _supervisor_runs(paths: Paths) -> None:
    """A supervisor state file naming this (live) process, every daemon ready."""
    me = psutil.Process()
    SupervisorState(pid=me.pid, create_time=me.create_time(), started_at=time.time(),
                    daemons={d.name: DaemonState(state="ready", pid=me.pid)
                             for d in control_plane_daemons()}).save(paths.supervisor_state)


@pytest.fixture(params=STATES)
def node_in(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    state: str = request.param
    root = tmp_path / "root"
    if state == "not-set-up":
        yield state, root
        return
    paths = _set_up(root)
    if state == "stopped":
        yield state, root
        return
    _supervisor_runs(paths)
    with _serve_network_parts(paths):
        if state == "api-down":
            yield state, root
            return
        with _serve_api(paths, node_ready=state == "ready"):
            yield state, root


def test_every_format_parses_in_every_state(node_in: tuple[str, Path]) -> None:
    state, root = node_in
    running = state in ("not-ready", "ready")
    expected_rc = 0 if running else 3

    proc = _status(root, "yaml")
    assert proc.returncode == expected_rc, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = yaml.safe_load(proc.stdout)
    top = doc["microkube"]
    assert top["running"] is running
    assert top["ready"] is (state == "ready")
    assert top["state"] == state
    assert isinstance(top["message"], str)
    assert bool(top["message"]) is (state != "ready")
    if not running:
        assert "microkube start" in top["message"] or "microkube inspect" in top["message"]
        assert "addons" not in doc
    else:
        addons = {a["name"]: a for a in doc["addons"]}
        assert addons["dns"] == {"name": "dns", "repository": "core",
                                 "description": addons["dns"]["description"],
                                 "version": addons["dns"]["version"], "status": "enabled"}
        assert addons["ingress"]["status"] == "disabled"
        assert all(set(a) == {"name", "repository", "description", "version", "status"}
                   for a in doc["addons"])
        assert all(" " not in a["name"] for a in doc["addons"])
    if state == "api-down":
        assert doc["daemons"] and set(doc["daemons"].values()) == {"ready"}
        assert "API server" in top["message"]

    proc = _status(root, "short")
    assert proc.returncode == expected_rc
    lines = proc.stdout.splitlines()
    if not running:
        assert lines == [top["message"]]
    else:
        assert lines[0].startswith("microkube is running")
        assert lines[1] == "addons:"
        parsed = [SHORT_ADDON.match(ln) for ln in lines[2:]]
        assert all(parsed), lines
        assert "  core/dns: enabled" in lines
        assert "  core/ingress: disabled" in lines

    proc = _status(root, "pretty")
    assert proc.returncode == expected_rc
    lines = proc.stdout.splitlines()
    if not running:
        assert lines[0] == top["message"]
    else:
        assert lines[0] == ("microkube is running" if state == "ready"
                            else f"microkube is running ({top['message']})")
        enabled = lines.index("  enabled:")
        assert lines[enabled + 1].split()[:3] == ["dns", "#", "(core)"]


def test_status_names_the_part_of_kubelite_that_failed(tmp_path: Path) -> None:
    paths = _set_up(tmp_path / "root")
    me = psutil.Process()
    daemons = {d.name: DaemonState(state="ready", pid=me.pid) for d in control_plane_daemons()}
    daemons["kubelite"] = DaemonState(state="backoff")
    SupervisorState(pid=me.pid, create_time=me.create_time(), started_at=time.time(),
                    daemons=daemons).save(paths.supervisor_state)
    # What kubelite writes when a part ends it: the part, then the reason.
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    (paths.run_dir / "kubelite.failed").write_text("kube-scheduler\nunknown flag: --nope\n")
    doc = yaml.safe_load(_status(tmp_path / "root", "yaml").stdout)
    assert doc["daemons"]["kubelite"] == "backoff: kube-scheduler failed (unknown flag: --nope)"
    assert "kube-scheduler failed" in doc["microkube"]["message"]
    # Once kubelite serves again, the old failure is history, not its state.
    daemons["kubelite"] = DaemonState(state="ready", pid=me.pid)
    SupervisorState(pid=me.pid, create_time=me.create_time(), started_at=time.time(),
                    daemons=daemons).save(paths.supervisor_state)
    doc = yaml.safe_load(_status(tmp_path / "root", "yaml").stdout)
    assert doc["daemons"]["kubelite"] == "ready"


def test_a_node_whose_api_server_is_down_reads_no_addons(tmp_path: Path) -> None:
    """The addons are shown only on a running node: while the API server does not answer,
    status does not read them (their listing's copy appears only once it does)."""
    root = tmp_path / "root"
    paths = _set_up(root)
    then = time.time() - 60  # every file older than the listing copy's racy window
    for f in root.rglob("*"):
        os.utime(f, (then, then))
    _supervisor_runs(paths)
    with _serve_network_parts(paths):
        assert _status(root, "short").returncode == 3
        assert not paths.addon_status_cache.exists()
        with _serve_api(paths, node_ready=True):
            proc = _status(root, "short")
    assert proc.returncode == 0, proc.stderr
    assert "  core/dns: enabled" in proc.stdout.splitlines()
    assert paths.addon_status_cache.exists()


def test_in_background_gives_the_result_or_raises_what_the_call_raised() -> None:
    from microkube.errors import MicrokubeError
    from microkube.node.status import in_background

    assert in_background(sum, [1, 2, 3])() == 6

    def fails() -> None:
        raise MicrokubeError("broken")

    waiter = in_background(fails)
    with pytest.raises(MicrokubeError, match="broken"):
        waiter()
