"""Removing a node: found by name or address in the Nodes and the datastore's members;
refused for this node, a Ready node without --force, or a lost quorum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from microkube.cluster import removal
from microkube.cluster.api import node_identity, reservation_seconds
from microkube.cluster.removal import NotAMember, RemovalRefused
from microkube.datastore.membership import Member


def _node(name: str, ip: str, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def _member(i: int, name: str, ip: str, learner: bool = False) -> Member:
    return Member(i, name, (f"https://{ip}:2380",), (f"https://{ip}:2379",), learner)


CP1, CP2, CP3 = (_member(1, "cp1", "10.0.0.1"), _member(2, "cp2", "10.0.0.2"),
                 _member(3, "cp3", "10.0.0.3"))
NODES = [_node("cp1", "10.0.0.1"), _node("cp2", "10.0.0.2"), _node("w1", "10.0.0.9", ready=False)]


def test_a_node_is_found_by_name_or_address_with_its_member() -> None:
    by_name = removal.find("cp2", NODES, [CP1, CP2])
    assert (by_name.node_name, by_name.member) == ("cp2", CP2)
    by_ip = removal.find("10.0.0.2", NODES, [CP1, CP2])
    assert (by_ip.node_name, by_ip.member) == ("cp2", CP2)
    worker = removal.find("10.0.0.9", NODES, [CP1, CP2])
    assert (worker.node_name, worker.member) == ("w1", None)
    assert worker.describe() == "the Node w1"


def test_a_member_whose_node_is_gone_is_found_from_the_member_list() -> None:
    found = removal.find("cp3", NODES, [CP1, CP2, CP3])
    assert (found.node_name, found.member) == (None, CP3)
    assert found.describe() == "the datastore voting member cp3"
    # A member added by a join that never started has no name: its address finds it.
    nameless = _member(4, "", "10.0.0.4", learner=True)
    assert removal.find("10.0.0.4", NODES, [CP1, nameless]).member == nameless


def test_an_unknown_target_is_one_line() -> None:
    with pytest.raises(NotAMember, match="no node of this cluster is named or has the address x"):
        removal.find("x", NODES, [CP1])


def test_plan_refuses_this_node_and_a_ready_node_without_force() -> None:
    with pytest.raises(RemovalRefused, match="cp1 is this node; run 'microkube leave'"):
        removal.plan("cp1", NODES, [CP1, CP2, CP3], {1, 2, 3}, "cp1", force=True)
    with pytest.raises(RemovalRefused, match=r"node cp2 is Ready: .* or add --force"):
        removal.plan("cp2", NODES, [CP1, CP2, CP3], {1, 2, 3}, "cp1", force=False)
    assert removal.plan("cp2", NODES, [CP1, CP2, CP3], {1, 2, 3}, "cp1", force=True).member == CP2
    assert removal.plan("w1", NODES, [CP1], {1}, "cp1", force=False).node_name == "w1"


def test_quorum_rules() -> None:
    # Three voters, one down: removing the dead one leaves two that answer.
    assert removal.quorum_refusal([CP1, CP2, CP3], {1, 2}, CP3) is None
    # ... but removing a live one leaves two voters of which one answers.
    why = removal.quorum_refusal([CP1, CP2, CP3], {1, 2}, CP2)
    assert why is not None and "only 1 answers, fewer than the 2 a quorum needs" in why
    assert "only voting member" in (removal.quorum_refusal([CP1], {1}, CP1) or "")
    learner = _member(5, "cp5", "10.0.0.5", learner=True)
    assert removal.quorum_refusal([CP1, learner], {1}, learner) is None
    with pytest.raises(RemovalRefused, match="quorum"):
        removal.plan("cp2", NODES, [CP1, CP2, CP3], {1, 2}, "cp1", force=True)


def test_plan_leave_refuses_the_asked_control_plane_and_strangers() -> None:
    with pytest.raises(RemovalRefused, match="a leaving control plane asks another one"):
        removal.plan_leave("cp1", NODES, [CP1, CP2], {1, 2}, "cp1")
    with pytest.raises(NotAMember):
        removal.plan_leave("w9", NODES, [CP1], {1}, "cp1")
    # A Ready node may leave: it asks for itself.
    assert removal.plan_leave("w1", NODES, [CP1], {1}, "cp1").to_json() == {"node": "w1",
                                                                           "member": None}


def test_only_a_node_certificate_proves_a_node_name() -> None:
    def cert(o: str, cn: str) -> dict[str, Any]:
        return {"subject": ((("organizationName", o),), (("commonName", cn),))}

    assert node_identity(cert("system:nodes", "system:node:w1")) == "w1"
    assert node_identity(cert("system:masters", "system:node:w1")) is None
    assert node_identity(cert("system:nodes", "system:kube-proxy")) is None
    assert node_identity(cert("system:nodes", "system:node:")) is None
    assert node_identity(None) is None and node_identity({}) is None


def test_a_joins_reservation_lasts_its_timeout_plus_a_grace_within_the_cap() -> None:
    assert reservation_seconds(None) == 600
    assert reservation_seconds(30) == 45
    assert reservation_seconds(3600) == 600


@pytest.mark.parametrize("target", ["", "  "])
def test_an_empty_target_is_refused_before_anything_is_asked(tmp_path: Path, target: str) -> None:
    from microkube.cluster.roster import remove_node
    from microkube.errors import UsageError
    from microkube.paths import Paths

    # A node not even set up: the empty name is refused before the node or its API is read.
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common", cache=tmp_path / "c")
    with pytest.raises(UsageError, match="needs a node's name or IP address"):
        remove_node(paths, target, False, lambda line: None)
