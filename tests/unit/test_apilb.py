"""A worker's API load balancer, its Python side: the saved list (seeded, never empty), the
kubeconfigs' server, the daemon's flags and order, and how status shows it. The balancer's
own logic (failover, closing connections) is tested in Go: tests/components/test_apilb.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from microkube.components import manifest
from microkube.components.build import wrapper_sources
from microkube.config import args
from microkube.config.node import NodeConfig
from microkube.errors import MicrokubeError, UsageError
from microkube.node.report import render_status
from microkube.node.status import NodeState, NodeStatus
from microkube.paths import Paths
from microkube.pki.kubeconfig import read_kubeconfig, render_kubeconfig
from microkube.pki.workerfiles import KUBECONFIGS, point_kubeconfigs
from microkube.services import apilb
from microkube.services.base import NodeContext
from microkube.services.registry import by_name, daemons_for

JOINED = "https://10.0.0.1:16443"


def worker(api_port: int = 16443) -> NodeConfig:
    return NodeConfig(node_name="w1", node_ip="10.0.0.9", role="worker", api_server=JOINED,
                      api_port=api_port)


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    paths = Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")
    paths.ensure()
    args.install_defaults(paths)
    return NodeContext(paths, worker(), environ={})


def test_the_seed_is_the_saved_list_else_the_join_address_never_empty() -> None:
    assert apilb.seed_servers(["10.0.0.2:16443", "10.0.0.3:16443", "10.0.0.2:16443"],
                              "10.0.0.1:16443") == ["10.0.0.2:16443", "10.0.0.3:16443"]
    assert apilb.seed_servers([], "10.0.0.1:16443") == ["10.0.0.1:16443"]
    assert apilb.seed_servers([""], "10.0.0.1:16443") == ["10.0.0.1:16443"]
    with pytest.raises(MicrokubeError, match="no API server known"):
        apilb.seed_servers([], "")


def test_the_saved_list_is_written_atomically_and_never_empty(tmp_path: Path) -> None:
    path = tmp_path / "api-servers.json"
    with pytest.raises(MicrokubeError, match="empty"):
        apilb.save_servers(path, [])
    assert not path.exists()
    apilb.save_servers(path, ["10.0.0.2:16443"])
    assert json.loads(path.read_text()) == {"servers": ["10.0.0.2:16443"]}
    assert apilb.read_servers(path) == ["10.0.0.2:16443"]
    assert [p.name for p in tmp_path.iterdir()] == ["api-servers.json"]  # no temporary left
    for broken in ("", "{", '{"servers": "x"}', "[1]", '{"servers": [1, ""]}'):
        path.write_text(broken)
        assert apilb.read_servers(path) == []


def test_host_port_of_a_url() -> None:
    assert apilb.host_port("https://10.0.0.5:16443") == "10.0.0.5:16443"
    assert apilb.host_port("https://[fd00::5]:6443") == "[fd00::5]:6443"
    with pytest.raises(MicrokubeError):
        apilb.host_port("https://10.0.0.5")


def test_prepare_seeds_from_the_join_address_then_keeps_what_was_learned(
        ctx: NodeContext) -> None:
    d = apilb.ApiLoadBalancer()
    d.prepare(ctx)
    assert apilb.read_servers(ctx.paths.api_servers_file) == ["10.0.0.1:16443"]
    learned = ["10.0.0.2:16443", "10.0.0.3:16443"]
    apilb.save_servers(ctx.paths.api_servers_file, learned)
    ctx.paths.apilb_state_file.write_text("{}")
    d.prepare(ctx)
    assert apilb.read_servers(ctx.paths.api_servers_file) == learned
    # The state file of an earlier run goes: its presence means this run serves.
    assert not ctx.paths.apilb_state_file.exists()
    assert not d.ready(ctx)


def test_flags_name_the_files_the_credential_and_the_join_address(ctx: NodeContext) -> None:
    argv = apilb.ApiLoadBalancer().command(ctx)
    assert argv[0] == str(ctx.paths.binary("apilb"))
    assert args.flag_value(argv, "listen") == "127.0.0.1:16443"
    assert args.flag_value(argv, "servers-file") == str(ctx.paths.api_servers_file)
    assert args.flag_value(argv, "state-file") == str(ctx.paths.apilb_state_file)
    assert args.flag_value(argv, "kubeconfig") == str(ctx.paths.kubeconfig("proxy"))
    assert args.flag_value(argv, "fallback") == "10.0.0.1:16443"
    assert args.flag_value(argv, "check-interval") == "1s"


def test_the_balancer_listens_where_the_clusters_api_servers_do(tmp_path: Path) -> None:
    paths = Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")
    paths.ensure()
    args.install_defaults(paths)
    argv = apilb.ApiLoadBalancer().command(NodeContext(paths, worker(6443), environ={}))
    assert args.flag_value(argv, "listen") == "127.0.0.1:6443"
    assert args.flag_value(argv, "fallback") == "10.0.0.1:16443"


def test_a_workers_clients_use_loopback_and_the_join_address_is_kept_apart() -> None:
    w = worker()
    assert w.api_url == "https://127.0.0.1:16443"
    assert w.api_server == JOINED
    cp = NodeConfig(node_name="c1", node_ip="10.0.0.1")
    assert cp.api_url == "https://127.0.0.1:16443"


def test_old_kubeconfigs_move_onto_the_balancer_keeping_their_credentials(
        ctx: NodeContext) -> None:
    pki = ctx.paths.pki
    for stem in KUBECONFIGS.values():
        pki.kubeconfig(stem).write_text(render_kubeconfig(
            server=JOINED, ca=b"CA", user=stem, cert=f"C-{stem}".encode(), key=b"K"))
    rewritten = point_kubeconfigs(pki, ctx.node.api_url)
    assert len(rewritten) == len(KUBECONFIGS)
    for stem in KUBECONFIGS.values():
        info = read_kubeconfig(pki.kubeconfig(stem))
        assert (info.server, info.ca_pem, info.cert_pem, info.key_pem) == (
            "https://127.0.0.1:16443", b"CA", f"C-{stem}".encode(), b"K")
        assert pki.kubeconfig(stem).stat().st_mode & 0o777 == 0o600
    assert point_kubeconfigs(pki, ctx.node.api_url) == []


def test_a_worker_starts_its_balancer_first_and_kubelite_waits_for_it() -> None:
    names = [d.name for d in daemons_for(worker())]
    assert names[0] == "apilb"
    assert "apilb" in by_name("kubelite", worker()).after
    assert "apilb" not in [d.name for d in daemons_for(NodeConfig(node_name="c", node_ip="10.0.0.1"))]
    assert by_name("apilb").binary == "apilb"


def test_status_shows_the_server_in_use(tmp_path: Path) -> None:
    state = tmp_path / "apilb.json"
    assert apilb.read_state(state) is None
    state.write_text(json.dumps({"current": "10.0.0.2:16443",
                                 "servers": ["10.0.0.1:16443", "10.0.0.2:16443"],
                                 "healthy": ["10.0.0.2:16443"], "switches": 2,
                                 "switched_at": 1.5}))
    lb = apilb.read_state(state)
    assert lb is not None and lb.switches == 2 and lb.switched_at == 1.5
    st = NodeStatus(NodeState.READY, node_name="w1", role="worker", control_plane=JOINED,
                    load_balancer=lb)
    text = render_status(st, "pretty")
    assert "api-load-balancer: using 10.0.0.2:16443 (1 of 2 API servers answer" in text
    assert st.as_dict()["api-load-balancer"] == {
        "current": "10.0.0.2:16443", "servers": ["10.0.0.1:16443", "10.0.0.2:16443"],
        "healthy": ["10.0.0.2:16443"]}


def test_our_own_module_is_built_from_its_folder_with_its_go_mod() -> None:
    comp = manifest.load().get("apilb")
    assert comp.is_local and comp.wrapper == "apilb"
    files = wrapper_sources(comp)
    assert "go.mod" in files and b"module microkube.local/apilb" in files["go.mod"]
    doc = {"components": {"x": {"module": "microkube.local/x", "version": "v0.1.0",
                                "packages": {"x": "github.com/a/b"}}}}
    with pytest.raises(UsageError, match="needs a 'wrapper'"):
        manifest.parse(doc, Path("components.yaml"))
