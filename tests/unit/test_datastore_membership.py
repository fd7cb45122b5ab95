"""The HA rule and the API server's etcd endpoints, from member lists (no etcd runs here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from microkube.datastore import membership as ms
from microkube.datastore.membership import Member
from microkube.paths import Paths


def member(n: int, learner: bool = False, name: str | None = None) -> Member:
    ip = f"10.0.0.{n}"
    return Member(n, f"cp{n}" if name is None else name, (f"https://{ip}:12380",),
                  (f"https://{ip}:12379",) if name != "" else (), learner)


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")


@pytest.mark.parametrize(("count", "wanted"), [(0, 0), (1, 1), (2, 1), (3, 3), (4, 3), (7, 3)])
def test_one_voter_until_three_members_then_three(count: int, wanted: int) -> None:
    assert ms.wanted_voters(count) == wanted


def test_two_members_keep_one_voter_and_a_standby() -> None:
    members = [member(1), member(2, learner=True)]
    assert ms.promotions(members) == []
    assert not ms.high_availability(members)
    assert ms.describe(members) == {"enabled": False, "voters": ["cp1"], "standbys": ["cp2"]}


def test_the_third_member_promotes_both_learners() -> None:
    members = [member(1), member(2, learner=True), member(3, learner=True)]
    assert [m.name for m in ms.promotions(members)] == ["cp2", "cp3"]
    after = [member(1), member(2), member(3)]
    assert ms.promotions(after) == [] and ms.high_availability(after)


def test_beyond_three_the_extra_members_stay_standbys_and_replace_a_lost_voter() -> None:
    four = [member(1), member(2), member(3), member(4, learner=True)]
    assert ms.promotions(four) == []
    # cp3 was removed for good: the standby takes its place.
    assert [m.name for m in ms.promotions([member(1), member(2), member(4, learner=True)])] \
        == ["cp4"]


def test_a_learner_that_never_started_is_not_promoted() -> None:
    members = [member(1), member(2, learner=True), member(3, learner=True, name="")]
    assert [m.name for m in ms.promotions(members)] == ["cp2"]
    assert members[2].label == "10.0.0.3"


def test_initial_cluster_names_the_joiner_and_every_started_member() -> None:
    members = [member(1), member(2), member(3, learner=True, name="")]
    assert ms.initial_cluster(members, "cp3", "https://10.0.0.3:12380") == (
        "cp3=https://10.0.0.3:12380,cp1=https://10.0.0.1:12380,cp2=https://10.0.0.2:12380")


def test_the_api_server_uses_loopback_when_this_node_votes_else_every_voter(paths: Paths) -> None:
    assert ms.etcd_servers(paths, "10.0.0.2") == "https://127.0.0.1:12379"  # no list: alone
    members = [member(1), member(2, learner=True)]
    assert ms.save_cache(paths, members) is True
    assert ms.save_cache(paths, members) is False
    assert ms.load_cache(paths) == members
    assert ms.etcd_servers(paths, "10.0.0.2") == "https://10.0.0.1:12379"
    assert ms.etcd_servers(paths, "10.0.0.1") == "https://127.0.0.1:12379"
    promoted = [member(1), member(2), member(3)]
    assert ms.etcd_servers(paths, "10.0.0.2", promoted) == "https://127.0.0.1:12379"
    four = [*promoted, member(4, learner=True)]
    assert ms.etcd_servers(paths, "10.0.0.4", four) == (
        "https://10.0.0.1:12379,https://10.0.0.2:12379,https://10.0.0.3:12379")


def test_a_member_votes_alone_with_no_list_or_as_the_only_voter() -> None:
    assert ms.votes_alone([], "10.0.0.1")  # a single node that never formed a cluster
    assert ms.votes_alone([member(1)], "10.0.0.1")
    # With a standby: still its own quorum; the standby is not.
    assert ms.votes_alone([member(1), member(2, learner=True)], "10.0.0.1")
    assert not ms.votes_alone([member(1), member(2, learner=True)], "10.0.0.2")
    assert not ms.votes_alone([member(1), member(2), member(3)], "10.0.0.1")
    assert not ms.votes_alone([member(1)], "10.0.0.9")  # a list without this node


def test_a_damaged_cache_reads_as_no_list(paths: Paths) -> None:
    ms.cache_file(paths).parent.mkdir(parents=True)
    ms.cache_file(paths).write_text("{not json")
    assert ms.load_cache(paths) == []


def test_members_round_trip_the_gateways_json() -> None:
    raw = {"ID": "6943830648996958329", "peerURLs": ["https://[fd00::3]:12380"],
           "isLearner": True}
    m = Member.from_json(raw)
    assert m.id == 6943830648996958329 and m.name == "" and m.ip == "fd00::3"
    assert Member.from_json(m.to_json()) == m
    assert ms.peer_url("fd00::3", 12380) == "https://[fd00::3]:12380"


def test_a_learner_whose_join_has_not_completed_is_not_promoted() -> None:
    members = [member(1), member(2, learner=True), member(3, learner=True)]
    assert [m.name for m in ms.promotions(members, joined={"cp2"})] == ["cp2"]
    assert ms.promotions(members, joined=set()) == []
