"""The supervisor's lifecycle logic, with `sleep` standing in for the daemons."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from microkube.config.node import NodeConfig
from microkube.paths import Paths
from microkube.pki.node import ensure_node_pki
from microkube.services.base import Daemon, NodeContext
from microkube.services.state import SupervisorState
from microkube.services.supervisor import Supervisor


class Sleeper(Daemon):
    binary = "sleep"
    started: ClassVar[list[str]] = []

    def command(self, ctx: NodeContext) -> list[str]:
        Sleeper.started.append(self.name)
        return ["sleep", "1000"]

    def ready(self, ctx: NodeContext) -> bool:
        return True


class First(Sleeper):
    name = "first"


class Second(Sleeper):
    name = "second"
    after = ("first",)


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")
    paths.ensure()
    return NodeContext(paths, NodeConfig(node_name="unit", node_ip="192.0.2.7"))


def _wait(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _supervise(ctx: NodeContext, daemons: list[Daemon],
               monkeypatch: pytest.MonkeyPatch) -> tuple[Supervisor, threading.Thread]:
    """A supervisor of ``daemons`` running in a thread (no signal handlers), and the thread."""
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    Sleeper.started.clear()
    sup = Supervisor(ctx, daemons, renew_certificates=lambda: None)
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    return sup, t


def _states(ctx: NodeContext) -> SupervisorState:
    st = SupervisorState.load(ctx.paths.supervisor_state)
    assert st is not None
    return st


def test_starts_in_dependency_order_restarts_and_stops(
    ctx: NodeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    Sleeper.started.clear()
    sup = Supervisor(ctx, [Second(), First()], renew_certificates=lambda: None)
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    _wait(lambda: ctx.paths.supervisor_state.exists()
          and all(d.state == "ready" for d in _states(ctx).daemons.values()))
    assert Sleeper.started == ["first", "second"]

    victim = _states(ctx).daemons["first"].pid
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    _wait(lambda: _states(ctx).daemons["first"].pid not in (None, victim)
          and _states(ctx).daemons["first"].state == "ready")
    assert _states(ctx).daemons["first"].restarts == 1

    pids = [d.pid for d in _states(ctx).daemons.values()]
    sup._on_signal(signal.SIGTERM, None)
    t.join(timeout=30)
    assert not t.is_alive()
    assert not ctx.paths.supervisor_state.exists()
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_certificates_near_expiry_are_renewed(ctx: NodeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    year_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=350)
    ensure_node_pki(ctx.paths.certs_dir, ctx.paths.credentials_dir, "unit", ["192.0.2.7"], "unit",
                    "10.152.183.0/24", "cluster.local", "https://127.0.0.1:16443", now=year_ago)
    monkeypatch.setattr("microkube.node.setup.pki_identity", lambda paths, config: {
        "certs_dir": paths.certs_dir, "credentials_dir": paths.credentials_dir,
        "node_name": "unit", "host_ips": ["192.0.2.7"], "hostname": "unit",
        "service_cidr": "10.152.183.0/24", "cluster_domain": "cluster.local",
        "api_server_url": "https://127.0.0.1:16443"})
    from microkube.node.setup import ensure_pki

    sup = Supervisor(ctx, [First()], renew_certificates=lambda: ensure_pki(ctx.paths, ctx.node))
    sup._check_certificates()
    assert sup.state.cert_days_left is not None and sup.state.cert_days_left > 300


def test_run_forked_reports_errors_and_keeps_imports_out_of_the_parent(tmp_path: Path) -> None:
    from microkube.errors import MicrokubeError
    from microkube.services.supervisor import run_forked

    marker = tmp_path / "done"
    assert run_forked(lambda: marker.write_text("yes")) is None
    assert marker.read_text() == "yes"  # the child's work is on disk

    def refuse() -> None:
        raise MicrokubeError("the API server said no")
    assert run_forked(refuse) == "the API server said no"

    def crash() -> None:
        raise ValueError("bad manifest")
    assert run_forked(crash) == "ValueError: bad manifest"

    import sys

    def load() -> None:
        import colorsys  # noqa: F401 - any module this process has not loaded
    sys.modules.pop("colorsys", None)
    assert run_forked(load) is None
    assert "colorsys" not in sys.modules


class SlowImports(Sleeper):
    """Serves at once; its one-shot work (an image import, say) lasts until a file appears."""

    name = "runtime"
    release: ClassVar[Path]

    def after_ready(self, ctx: NodeContext) -> None:
        deadline = time.monotonic() + 20
        while not SlowImports.release.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


class NeedsServing(Sleeper):
    name = "needs-serving"
    after = ("runtime",)
    after_accepting = ("runtime",)


class NeedsReady(Sleeper):
    name = "needs-ready"
    after = ("runtime",)


def test_after_ready_work_runs_while_daemons_needing_only_serving_start(
    ctx: NodeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SlowImports.release = tmp_path / "release"
    sup, t = _supervise(ctx, [SlowImports(), NeedsServing(), NeedsReady()], monkeypatch)
    _wait(lambda: "needs-serving" in Sleeper.started)
    # The work still runs: the daemon that needs it done waits, the runtime is not ready yet.
    time.sleep(0.5)
    assert "needs-ready" not in Sleeper.started
    assert _states(ctx).daemons["runtime"].state == "starting"
    SlowImports.release.write_text("")
    _wait(lambda: ctx.paths.supervisor_state.exists()
          and all(d.state == "ready" for d in _states(ctx).daemons.values()))
    assert Sleeper.started == ["runtime", "needs-serving", "needs-ready"]
    sup._on_signal(signal.SIGTERM, None)
    t.join(timeout=30)
    assert not t.is_alive()


def test_stop_ends_after_ready_work_still_running(
    ctx: NodeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    SlowImports.release = tmp_path / "never"
    sup = Supervisor(ctx, [SlowImports()], renew_certificates=lambda: None)
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    _wait(lambda: sup.slots["runtime"].after_ready is not None)
    child = sup.slots["runtime"].after_ready
    assert child is not None
    t0 = time.monotonic()
    sup._on_signal(signal.SIGTERM, None)
    t.join(timeout=30)
    assert not t.is_alive() and time.monotonic() - t0 < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(child[0], os.WNOHANG)  # ended and reaped


class AcceptsOnly(Sleeper):
    """Accepts connections at once but never serves (etcd still opening its data)."""

    name = "runtime"

    def ready(self, ctx: NodeContext) -> bool:
        return False

    def accepts(self, ctx: NodeContext) -> bool:
        return True


class NeedsAccepting(NeedsReady):
    name = "needs-accepting"
    after_accepting = ("runtime",)


def test_daemon_needing_only_accepting_starts_before_its_dependency_serves(
    ctx: NodeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    sup, t = _supervise(ctx, [AcceptsOnly(), NeedsAccepting(), NeedsReady()], monkeypatch)
    _wait(lambda: "needs-accepting" in Sleeper.started)
    time.sleep(0.5)
    # The runtime never served: the daemon that needs it ready still waits.
    assert Sleeper.started == ["runtime", "needs-accepting"]
    assert _states(ctx).daemons["runtime"].state == "starting"
    # A dependency whose process is gone accepts nothing: no start waits on a stale probe.
    store = sup.slots["runtime"]
    assert store.proc is not None
    assert sup._accepts(store)
    sup._on_signal(signal.SIGTERM, None)
    t.join(timeout=30)
    assert not t.is_alive()
    assert not sup._accepts(store)


@pytest.mark.parametrize("content", [
    '{"pid": 1, "daemons": 5}', "[1]", '{"pid": "x", "create_time": 1, "started_at": 1}',
    '{"pid": 1, "create_time": 1, "started_at": 1, "daemons": {"a": 5}}', "\udcff{",
])
def test_a_damaged_state_file_reads_as_no_supervisor(tmp_path: Path, content: str) -> None:
    path = tmp_path / "supervisor.json"
    path.write_bytes(content.encode(errors="surrogateescape"))
    assert SupervisorState.load(path) is None


# What the supervisor's own process runs, short of starting daemons: main() up to run(), then
# each daemon's start and probe hooks and a certificate check. Its ports are bound by the test
# and not listening, so every probe is refused. Prints the heavy modules it loaded.
_IDLE_PATH = """
import sys
from pathlib import Path
from microkube.errors import MicrokubeError
from microkube.node.supervise import supervisor
from microkube.paths import Paths, Ports

root = Path(sys.argv[1])
paths = Paths(root / "snap", root / "data", root / "common", cache=root / "cache",
              ports=Ports(*map(int, sys.argv[2:])))
sup = supervisor(paths)
for slot in sup.slots.values():
    d = slot.daemon
    d.can_start(sup.ctx)
    try:
        d.prepare(sup.ctx)
        d.command(sup.ctx)
    except MicrokubeError:  # no ipset on this host, say: the supervisor logs it
        pass
    d.environment(sup.ctx)
    d.ready(sup.ctx)
    d.accepts(sup.ctx)
sup._check_certificates()
sup.state.save(paths.supervisor_state)
heavy = ("cryptography", "yaml", "jinja2", "jsonschema", "requests", "click", "aiohttp")
print("heavy:", *sorted({m.split(".")[0] for m in sys.modules} & set(heavy)))
"""


@pytest.mark.parametrize("role", ["control-plane", "worker"])
def test_the_supervisors_own_process_keeps_heavy_libraries_out(tmp_path: Path, role: str) -> None:
    """cryptography (~10 MB PSS), PyYAML and the CLI's libraries stay out of the supervisor
    for the node's lifetime: certificate work and YAML parsing run in forked children. At
    the first start after set-up: no JSON copy of node.yaml, no admin PEM yet. A worker
    reads its kubeconfigs with PyYAML at each start of its load balancer. Once the copies
    are made, the next start skips the forked child that makes them."""
    import shutil
    import socket
    import subprocess
    import sys

    from microkube.config import args, node
    from microkube.paths import Ports
    from microkube.pki.expiry_summary import earliest_expiry_summary

    held = [socket.socket() for _ in Ports._fields]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        ports = [s.getsockname()[1] for s in held]
        cp = Paths(tmp_path / "snap", tmp_path / "cp", tmp_path / "cpcommon", cache=tmp_path / "c")
        ensure_node_pki(cp.certs_dir, cp.credentials_dir, "unit", ["127.0.0.1"], "unit",
                        "10.152.183.0/24", "cluster.local", "https://127.0.0.1:16443")
        paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common",
                      cache=tmp_path / "c")
        paths.ensure()
        args.install_defaults(paths)
        if role == "worker":
            config = NodeConfig(node_name="unit", node_ip="127.0.0.1", role="worker",
                                api_server=f"https://127.0.0.1:{ports[0]}", api_port=ports[0])
            paths.credentials_dir.mkdir(parents=True, exist_ok=True)
            for name in ("ca.crt", "kubelet.crt", "kubelet.key"):
                shutil.copy(cp.certs_dir / name, paths.certs_dir / name)
            for stem in ("kubelet", "proxy", "flannel", "netpol"):
                shutil.copy(cp.kubeconfig(stem), paths.kubeconfig(stem))
        else:
            config = NodeConfig(node_name="unit", node_ip="127.0.0.1", api_port=ports[0])
            shutil.copytree(cp.data, paths.data, dirs_exist_ok=True)
        node.save(paths.state_file, config)
        earliest_expiry_summary(paths)
        out = subprocess.run([sys.executable, "-c", _IDLE_PATH, str(tmp_path), *map(str, ports)],
                             capture_output=True, text=True, check=True, timeout=60)
    finally:
        for s in held:
            s.close()
    loaded = out.stdout.splitlines()[-1].split()
    assert loaded == ["heavy:", *(["yaml"] if role == "worker" else [])], out.stdout
    from microkube.node.supervise import _current_context

    assert _current_context(paths) is not None
    node.save(paths.state_file, config)  # an edit of the settings: node.yaml's copy is stale
    assert _current_context(paths) is None
