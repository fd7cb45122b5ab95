"""Control planes sharing an external datastore: what the agent hands a joiner and how the
joiner keeps it, which control planes may be admitted, how status says HA rests on the
store, and how a database that stops answering is named (no network beyond loopback)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from microkube.cluster.controlplane import SHARED_FILES, control_plane_of
from microkube.cluster.cpjoin import install
from microkube.config import args, node
from microkube.config.node import NodeConfig
from microkube.datastore import health, membership, settings
from microkube.errors import UsageError
from microkube.node.report import render_status
from microkube.node.status import NodeState, NodeStatus
from microkube.paths import Paths

PG = "postgres://kine:s3cret@10.0.0.5:5432/kine?sslmode=require"


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    p = Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")
    p.ensure()
    return p


def _kept_store(paths: Paths, tmp_path: Path) -> settings.Datastore:
    for name, text in (("ca.pem", "CA PEM"), ("c.pem", "CERT PEM"), ("k.pem", "KEY PEM")):
        (tmp_path / name).write_text(text)
    store = settings.parse(PG, {"ca": tmp_path / "ca.pem", "cert": tmp_path / "c.pem",
                                "key": tmp_path / "k.pem"})
    settings.save(paths, store)
    return settings.load(paths, settings.POSTGRES)


def test_a_shared_store_is_kept_private_on_the_joiner(paths: Paths, tmp_path: Path) -> None:
    shared = settings.to_share(paths, _kept_store(paths, tmp_path))
    assert shared == {"kind": "postgres", "endpoints": [PG],
                      "tls": {"ca": "CA PEM", "cert": "CERT PEM", "key": "KEY PEM"}}
    joiner = Paths(snap=tmp_path / "snap", data=tmp_path / "j" / "data",
                   common=tmp_path / "j" / "common")
    joiner.ensure()
    store = settings.from_share(joiner, shared)
    assert store == settings.load(joiner, "postgres")
    assert store.endpoints == (PG,) and store.display().count("***") == 1
    for path in (*store.tls.values(), joiner.credentials_dir / "datastore.json"):
        assert path.is_relative_to(joiner.credentials_dir)
        assert path.stat().st_mode & 0o777 == 0o600
    assert store.tls["key"].read_text() == "KEY PEM"


@pytest.mark.parametrize("bad", [
    None, {}, {"kind": "postgres"}, {"kind": "mysql", "endpoints": [PG]},
    {"kind": "sqlite", "endpoints": ["sqlite"]},
    {"kind": "postgres", "endpoints": [PG], "tls": {"password": "x"}},
])
def test_a_malformed_shared_store_is_refused_in_one_line(paths: Paths, bad: object) -> None:
    with pytest.raises(UsageError, match=r"^the datastore the control plane shared is malformed$"):
        settings.from_share(paths, bad)
    assert not (paths.credentials_dir / "datastore.json").exists()


def test_the_database_address_has_each_kinds_default_port() -> None:
    assert settings.address(settings.parse("postgres://u:p@db.lan/kine")) == ("db.lan", 5432)
    assert settings.address(settings.parse("mysql://u:p@tcp(10.0.0.7:3307)/k")) == \
        ("10.0.0.7", 3307)
    assert settings.address(settings.parse("mysql://u:p@10.0.0.7/k")) == ("10.0.0.7", 3306)
    with pytest.raises(ValueError):
        settings.address(settings.parse("sqlite"))


def _shared_files() -> dict[str, str]:
    return {name: f"text of {name}\n" for name in SHARED_FILES}


def test_a_joiner_on_an_external_store_gets_no_etcd_flags_or_members(paths: Paths) -> None:
    me = NodeConfig(node_name="cp-2", node_ip="10.0.0.12")
    answer = {"files": _shared_files(),
              "datastore": {"kind": "postgres", "endpoints": [PG], "tls": {"ca": "CA PEM"}},
              "cluster": {"pod_cidr": "10.1.0.0/16", "service_cidr": "10.152.183.0/24",
                          "cluster_domain": "cluster.local", "api_port": 16443}}
    config = install(paths, answer, me)
    assert config.datastore == "postgres" and node.load(paths.state_file) == config
    assert settings.load(paths, "postgres").tls["ca"].read_text() == "CA PEM"
    assert paths.pki.service_account_key.stat().st_mode & 0o777 == 0o600
    etcd_args = paths.args_file("etcd").read_text()
    assert "--initial-cluster-state=existing" not in etcd_args
    assert not membership.cache_file(paths).exists()
    # kine serves where etcd would: the API server's flags are the defaults.
    assert paths.args_file("kube-apiserver").read_text() == args.default_text("kube-apiserver")


@pytest.mark.parametrize(("kind", "learner", "shared"), [
    ("etcd", True, False), ("sqlite", False, False), ("postgres", True, True),
])
def test_only_etcd_adds_learners_and_only_external_stores_are_shared(
        paths: Paths, tmp_path: Path, kind: str, learner: bool, shared: bool) -> None:
    if kind == "postgres":
        _kept_store(paths, tmp_path)
    cp = control_plane_of(paths, NodeConfig(node_name="cp-1", node_ip="10.0.0.11",
                                            datastore=kind))
    assert (cp.add_learner is not None) == (kind == "etcd")
    assert (cp.completed is not None) == (kind == "etcd")
    assert (cp.datastore is not None) == shared
    if shared:
        assert cp.datastore is not None and cp.datastore()["endpoints"] == [PG]


def _shared_status(problem: str = "") -> NodeStatus:
    shown = settings.mask(PG)
    return NodeStatus(NodeState.READY, node_name="cp-1", datastore="postgres",
                      datastore_endpoint=shown, datastore_problem=problem,
                      nodes=[("cp-1", "control-plane", True), ("cp-2", "control-plane", True),
                             ("w-1", "worker", True)])


def test_status_says_ha_rests_on_the_shared_store() -> None:
    st = _shared_status()
    doc = st.as_dict()
    assert doc["high-availability"] == {"enabled": True, "voters": [], "standbys": [],
                                        "rests-on": settings.mask(PG)}
    assert [n["datastore"] for n in doc["nodes"]] == ["shared", "shared", "none"]  # type: ignore[index]
    pretty = render_status(st, "pretty")
    assert "high-availability: yes\n  control planes: cp-1 cp-2 (sharing the external " \
           "datastore: high availability rests on it)\n" in pretty
    assert "voter" not in pretty and "s3cret" not in pretty
    # One control plane on the store: not highly available.
    st.nodes = st.nodes[:1]
    assert st.as_dict()["high-availability"]["enabled"] is False  # type: ignore[index]


def test_status_names_a_database_that_does_not_answer() -> None:
    line = f"datastore {settings.mask(PG)} unreachable: connection refused"
    st = _shared_status(line)
    assert st.as_dict()["datastore"]["problem"] == line  # type: ignore[index]
    assert f"\n  {line}\n" in render_status(st, "pretty")


def _listening() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_a_database_that_stops_answering_is_named_once_in_the_log(
        caplog: pytest.LogCaptureFixture) -> None:
    server = _listening()
    port = server.getsockname()[1]
    store = settings.parse(f"postgres://kine:s3cret@127.0.0.1:{port}/kine")
    assert health.problem(store) is None
    watch = health.Watch(store)
    caplog.set_level(logging.INFO, "microkube.datastore.health")
    watch.step()
    server.close()
    line = f"datastore postgres://kine:***@127.0.0.1:{port}/kine unreachable: connection refused"
    assert health.problem(store) == line
    watch.step()
    watch.step()
    server = _listening_on(port)
    watch.step()
    server.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"{line}; the API server cannot read or write objects until it answers",
        f"datastore postgres://kine:***@127.0.0.1:{port}/kine answers again"]
    assert health.problem(settings.parse("sqlite")) is None


def _listening_on(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    return s
