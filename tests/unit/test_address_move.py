"""A node's address moving while it was stopped: which address it takes, what follows it
(config/address.py, datastore/peermove.py). No network, no etcd: a closed loopback port
stands in for voters that do not answer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from microkube.config import address, node
from microkube.config.address import AddressLost, AddressMove, choose_address
from microkube.config.node import NodeConfig
from microkube.datastore import membership, peermove
from microkube.datastore.membership import Member
from microkube.datastore.peermove import PeerMoveRefused, plan
from tests.clusternode import prepare_node_root

OLD, NEW = "10.0.0.5", "10.0.0.9"


def test_a_kept_address_still_on_the_host_changes_nothing_whatever_else_appears() -> None:
    # An address added to another interface (a VPN, a second NIC) must not move the node.
    present = {"127.0.0.1", OLD, "192.168.7.1", "172.17.0.1"}
    assert choose_address(OLD, present, default_route="192.168.7.1",
                          candidates=["192.168.7.1", OLD]) is None


def test_a_gone_address_moves_to_the_default_routes_address() -> None:
    move = choose_address(OLD, {"127.0.0.1", NEW, "172.17.0.1"}, default_route=NEW,
                          candidates=[NEW, "172.17.0.1"])
    assert move == AddressMove(OLD, NEW, "the default route's interface")
    assert move.line() == f"this node's address {OLD} is gone; it now uses {NEW} " \
                          "(the default route's interface)"


def test_an_explicit_address_on_the_host_wins_and_one_elsewhere_is_ignored() -> None:
    present = {"127.0.0.1", NEW, "192.168.7.1"}
    assert choose_address(OLD, present, explicit="192.168.7.1", default_route=NEW).new \
        == "192.168.7.1"
    # The test nodes' environment still names the old address: not on the host, so ignored.
    assert choose_address(OLD, present, explicit=OLD, default_route=NEW).new == NEW


def test_without_a_default_route_the_only_address_of_the_same_version_is_taken() -> None:
    move = choose_address(OLD, {NEW, "2001:db8::9"}, candidates=[NEW, "2001:db8::9"])
    assert move is not None and (move.new, move.how) == (NEW, "the host's only address")


@pytest.mark.parametrize(("candidates", "found"), [
    ([], "found no other address"),
    ([NEW, "10.0.0.10"], f"found {NEW}, 10.0.0.10"),
])
def test_no_single_replacement_is_refused_with_the_fix(candidates: list[str], found: str) -> None:
    with pytest.raises(AddressLost) as e:
        choose_address(OLD, set(candidates), candidates=candidates)
    assert str(e.value) == (f"this node's address {OLD} is on none of this host's interfaces "
                            f"({found}); restore it, or start it with MICROKUBE_NODE_IP=<address>")
    with pytest.raises(AddressLost, match=r"snap set microkube node\.ip=<address>"):
        choose_address(OLD, set(candidates), candidates=candidates, in_snap=True)


def test_follow_saves_the_new_address_only_when_the_old_one_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "node.yaml"
    config = NodeConfig(node_name="n1", node_ip=OLD)
    node.save(state, config)
    monkeypatch.setattr(address, "host_addresses", lambda: {"127.0.0.1", OLD, NEW})
    assert address.follow(state, config, {}) == (config, None)
    assert node.load(state).node_ip == OLD

    monkeypatch.setattr(address, "host_addresses", lambda: {"127.0.0.1", NEW})
    monkeypatch.setattr(node, "default_route_ip", lambda: NEW)
    moved, move = address.follow(state, config, {"MICROKUBE_NODE_IP": OLD})
    assert move is not None and (move.old, move.new) == (OLD, NEW)
    assert moved.node_ip == NEW and node.load(state) == moved


def test_host_addresses_include_loopback() -> None:
    assert "127.0.0.1" in address.host_addresses()


# --- the etcd member's peer URL ------------------------------------------------------------


def member(n: int, ip: str, learner: bool = False) -> Member:
    return Member(n, f"cp{n}", (f"https://{ip}:12380",), (f"https://{ip}:12379",), learner)


def test_a_member_at_its_address_or_not_a_member_needs_no_fix() -> None:
    members = [member(1, OLD)]
    assert plan(members, "cp1", f"https://{OLD}:12380") is None
    assert plan(members, "cp2", f"https://{NEW}:12380") is None  # a worker, or kine


def test_a_lone_voter_fixes_itself_and_a_member_with_other_voters_asks_them() -> None:
    url = f"https://{NEW}:12380"
    lone = plan([member(1, OLD), member(2, "10.0.0.6", learner=True)], "cp1", url)
    assert lone is not None and lone.others == () and lone.url == url
    assert lone.line() == f"etcd member cp1: peer URL https://{OLD}:12380 -> {url}"
    standby = plan([member(1, "10.0.0.6"), member(2, OLD, learner=True)], "cp2", url)
    assert standby is not None and [m.name for m in standby.others] == ["cp1"]
    voter = plan([member(1, OLD), member(2, "10.0.0.6"), member(3, "10.0.0.7")], "cp1", url)
    assert voter is not None and [m.name for m in voter.others] == ["cp2", "cp3"]


def test_other_voters_that_do_not_answer_refuse_the_start_naming_the_fix(tmp_path: Path) -> None:
    paths = prepare_node_root(tmp_path / "root", "cp2", NEW)
    with socket.socket() as s:  # a loopback port where nothing listens: refused at once
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    voter = Member(1, "cp1", ("https://127.0.0.1:1",), (f"https://127.0.0.1:{closed}",), False)
    membership.save_cache(paths, [voter, member(2, OLD, learner=True)])
    with pytest.raises(PeerMoveRefused) as e:
        peermove.update_through_others(paths, "cp2", NEW)
    line = str(e.value)
    assert "\n" not in line
    assert line.startswith(f"this control plane's address moved to {NEW}, and the datastore's "
                           "other voters (cp1) did not record its new peer URL (")
    assert line.endswith("start it again once they are up, or run 'microkube remove-node cp2 "
                         "--force' on another control plane and join this node again")
    # Nothing is asked when the cache already has this member at its address, or it votes alone.
    membership.save_cache(paths, [voter, member(2, NEW, learner=True)])
    assert peermove.update_through_others(paths, "cp2", NEW) is None
    membership.save_cache(paths, [member(2, OLD)])
    assert peermove.update_through_others(paths, "cp2", NEW) is None
