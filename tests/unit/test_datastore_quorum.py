"""The quorum rule and its probe: who answers, whether the API can write, and the one line
``status`` prints. The probe runs against real TLS servers on loopback (the node's own etcd
CA and server certificate) and against addresses where nothing answers."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from microkube.datastore import membership, quorum
from microkube.datastore.membership import Member
from microkube.node.status import NodeState, NodeStatus, assess
from microkube.paths import Paths
from tests.clusternode import prepare_node_root
from tests.stubserver import QuietHandler


def test_one_of_three_has_no_quorum_and_names_the_missing() -> None:
    q = quorum.assess(["cp3", "cp1", "cp2"], {"cp1"})
    assert (q.voters, q.missing, q.answering) == (("cp1", "cp2", "cp3"), ("cp2", "cp3"), ("cp1",))
    assert q.needed == 2 and not q.ok
    assert q.line() == ("no quorum: 1 of 3 datastore voters answer (missing: cp2, cp3); "
                        "the API refuses writes until 1 more is back")
    assert q.record() == {"ok": False, "voters": 3, "needed": 2, "answering": ["cp1"],
                          "missing": ["cp2", "cp3"]}


@pytest.mark.parametrize(("total", "up", "ok"), [
    (2, 1, False), (2, 2, True), (3, 2, True), (3, 0, False), (4, 2, False), (4, 3, True),
    (5, 2, False), (5, 3, True)])
def test_a_quorum_is_more_than_half_the_voters(total: int, up: int, ok: bool) -> None:
    names = [f"cp{i}" for i in range(total)]
    assert quorum.assess(names, names[:up]).ok is ok


def test_none_answering_says_how_many_must_come_back() -> None:
    line = quorum.assess(["a", "b", "c", "d", "e"], ()).line()
    assert line.startswith("no quorum: 0 of 5 datastore voters answer (missing: a, b, c, d, e)")
    assert line.endswith("until 3 more are back")


def test_a_quorum_with_one_missing_says_so_without_alarm() -> None:
    assert quorum.assess(["a", "b", "c"], {"a", "c"}).line() == \
        "datastore quorum: 2 of 3 datastore voters answer (missing: b)"
    assert quorum.assess(["a", "b", "c"], "abc").summary() == "3 of 3 datastore voters answer"


def test_a_lost_quorum_outranks_the_api_servers_answer() -> None:
    lost = quorum.assess(["a", "b", "c"], {"a"})
    state, message = assess({"etcd": "starting", "kubelite": "ready"}, 200, True,
                            "https://10.0.0.1:16443", lost)
    assert state is NodeState.NO_QUORUM and message == lost.line()
    assert assess({"etcd": "ready"}, 200, True, "u", quorum.assess(["a", "b", "c"], {"a", "b"})) \
        == (NodeState.READY, "")
    # Nothing runs: stopped, whatever the peers do.
    assert assess(None, 0, False, "u", lost)[0] is NodeState.STOPPED


def test_yaml_carries_the_quorum_under_the_datastore_in_every_state() -> None:
    st = NodeStatus(NodeState.NO_QUORUM, "no quorum: …", node_name="a", datastore="etcd",
                    datastore_endpoint="etcd", quorum=quorum.assess(["a", "b", "c"], {"a"}))
    doc = st.as_dict()
    assert doc["microkube"] == {"running": False, "ready": False, "state": "no-quorum",
                                "message": "no quorum: …"}
    assert doc["datastore"] == {"kind": "etcd", "endpoint": "etcd", "problem": "", "quorum": {
        "ok": False, "voters": 3, "needed": 2, "answering": ["a"], "missing": ["b", "c"]}}
    assert "quorum" not in NodeStatus(NodeState.READY, datastore="etcd").as_dict()["datastore"]


# --- the probe ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    return prepare_node_root(tmp_path_factory.mktemp("quorum") / "root", "cp1", "127.0.0.1")


class _Health(QuietHandler):
    """etcd's /version; any answer means "up" (here a 503, as etcd's /health without a
    leader)."""

    def do_GET(self) -> None:
        body = b'{"etcdserver":"3.6.0","etcdcluster":"3.6.0"}'
        self.reply(200 if self.path == "/version" else 503, body)


@contextlib.contextmanager
def etcd_stand_in(paths: Paths) -> Iterator[int]:
    """An HTTPS server with the node's etcd server certificate, requiring a client certificate
    from the etcd CA; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(paths.pki.etcd_ca.cert))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(str(paths.pki.etcd_server.cert), str(paths.pki.etcd_server.key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _voter(n: int, client: str) -> Member:
    return Member(n, f"cp{n}", (f"https://10.0.0.{n}:12380",), (client,), False)


def _refused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: connecting is refused


def test_probe_counts_an_answering_voter_and_names_the_silent_ones(node: Paths) -> None:
    with etcd_stand_in(node) as port:
        members = [_voter(1, f"https://127.0.0.1:{port}"),
                   _voter(2, f"https://127.0.0.1:{_refused_port()}"),
                   _voter(3, f"https://127.0.0.1:{_refused_port()}"),
                   Member(4, "cp4", ("https://10.0.0.4:12380",), (), True)]  # a learner
        membership.save_cache(node, members)
        q = quorum.probe(node)
    assert q is not None
    assert (q.voters, q.answering, q.ok) == (("cp1", "cp2", "cp3"), ("cp1",), False)


def test_probe_is_bounded_by_one_timeout_not_one_per_voter(node: Paths) -> None:
    # TEST-NET-1 addresses: nothing answers there (refused, unreachable or silent).
    members = [_voter(n, f"https://192.0.2.{n}:12379") for n in (1, 2, 3, 4, 5)]
    began = time.monotonic()
    q = quorum.probe(node, members, timeout=0.3)
    assert time.monotonic() - began < 1.0
    assert q is not None and q.answering == () and not q.ok


def test_no_probe_for_a_single_voter_or_no_list(tmp_path: Path, node: Paths) -> None:
    assert quorum.probe(node, [_voter(1, "https://127.0.0.1:1")]) is None
    assert quorum.probe(Paths(tmp_path / "s", tmp_path / "d", tmp_path / "c")) is None


def test_start_says_it_waits_for_the_quorum_until_a_peer_answers(tmp_path: Path) -> None:
    from microkube.node.status import quorum_note

    paths = prepare_node_root(tmp_path / "root", "cp1", "192.0.2.10")
    own = Member(1, "cp1", ("https://192.0.2.10:12380",), ("https://192.0.2.10:12379",), False)
    with etcd_stand_in(paths) as port:
        peers = [_voter(2, f"https://127.0.0.1:{_refused_port()}"),
                 _voter(3, f"https://127.0.0.1:{_refused_port()}")]
        membership.save_cache(paths, [own, *peers])
        # Its own etcd is only starting: counted up, the two silent peers are not.
        assert quorum_note(paths) == (
            "waiting for the datastore's quorum: 1 of 3 datastore voters answer (missing: cp2, "
            "cp3); this node serves once enough of them start")
        membership.save_cache(paths, [own, _voter(2, f"https://127.0.0.1:{port}"), peers[1]])
        assert quorum_note(paths) == ""
    membership.save_cache(paths, [own])  # a single node has no quorum to wait for
    assert quorum_note(paths) == ""
