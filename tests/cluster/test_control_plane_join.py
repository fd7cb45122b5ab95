"""Three real control planes on a test LAN: each joins, HA turns on at the third, and every
API server serves the same cluster.

One cluster (tests/multinode.py) is shared by the module: the first node
starts, the second joins (and stays a standby: two voters would be worse than
one), the third joins (and the leader's agent promotes both learners). Last, the
membership changes: the third leaves and joins again (its own single-node cluster
discarded), then the second is killed, removed with ``remove-node --force`` and
replaced by a new machine with the same name and address.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.multinode import (
    Cluster,
    TimedJoin,
    cluster,
    kill_machine,
    replace_machine,
    timed_join,
)
from tests.testnode import TestNode, require_root_and_node_built

NAMES = ("mk-cp1", "mk-cp2", "mk-cp3")


@dataclass
class Plane:
    lan: Cluster
    nodes: list[TestNode]
    joins: list[TimedJoin]  # the second's and the third's
    status_at_two: dict[str, Any]  # the first node's status once the second had joined


def status(node: TestNode) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    return doc


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    require_root_and_node_built()
    with cluster(Path(tmp_path_factory.mktemp("lan"))) as lan:
        nodes = [lan.add(name) for name in NAMES]
        nodes[0].start()
        joins, at_two = [], {}
        for joiner in nodes[1:]:
            join = timed_join(joiner, lan.join_string(nodes[0]))
            assert join.returncode == 0, join.output
            joins.append(join)
            if not at_two:
                at_two = status(nodes[0])
        yield Plane(lan, nodes, joins, at_two)


def _etcd_servers(node: TestNode) -> str:
    spec = json.loads((node.root / "common" / "run" / "kubelite.json").read_text())
    flags = [f for f in spec["parts"]["kube-apiserver"] if f.startswith("--etcd-servers=")]
    return flags[-1].split("=", 1)[1]


def test_the_second_control_plane_is_a_standby_and_ha_is_off(plane: Plane) -> None:
    out = plane.joins[0].output
    for line in ("the cluster CA matches the join string's fingerprint",
                 "this node's etcd member was added as a learner", "node mk-cp2 is Ready",
                 "this node is an etcd standby; voters: mk-cp1; high availability: no",
                 "mk-cp2 joined the cluster as a control plane (etcd standby)"):
        assert line in out, out
    ha = plane.status_at_two["high-availability"]
    assert ha == {"enabled": False, "voters": ["mk-cp1"], "standbys": ["mk-cp2"]}


def test_the_third_control_plane_makes_three_voters_and_ha_is_on(plane: Plane) -> None:
    out = plane.joins[1].output
    assert "this node is an etcd voter; voters: mk-cp1 mk-cp2 mk-cp3; high availability: yes" \
        in out, out
    for node in plane.nodes:
        # A standby just promoted restarts its API server onto its own member: wait for it.
        node.wait_for(f"{node.name}'s API server on its own etcd member",
                      lambda n=node: _etcd_servers(n) == "https://127.0.0.1:12379", timeout=90)
        node.run("status", "--wait-ready", "--timeout", "90", timeout=120)
        st = status(node)
        assert st["high-availability"] == {"enabled": True, "voters": list(NAMES),
                                           "standbys": []}, node.name
        assert st["nodes"] == [{"name": n, "role": "control-plane", "ready": True,
                                "datastore": "voter"} for n in NAMES], node.name
        pretty = node.run("status").stdout
        assert "high-availability: yes" in pretty
        assert f"datastore voter nodes: {' '.join(NAMES)}" in pretty
    ready = [j.at("is Ready") for j in plane.joins]
    settled = plane.joins[1].at("high availability: yes")
    print(f"\ncontrol plane join to Node Ready: {ready[0]:.1f} s (second), {ready[1]:.1f} s "
          f"(third); third join to three voters: {settled:.1f} s")


def test_an_object_written_through_one_api_server_is_read_through_the_others(
        plane: Plane) -> None:
    first, second, third = plane.nodes
    # Each node's kubectl talks to its own API server: loopback, in the node's own namespace.
    for node in plane.nodes:
        server = yaml.safe_load((node.root / "data" / "credentials" / "admin.config")
                                .read_text())["clusters"][0]["cluster"]["server"]
        assert server == "https://127.0.0.1:16443"
    first.run("kubectl", "create", "configmap", "written-on-cp1", "--from-literal=k=from-cp1")
    # A Secret needs the same encryption key on every API server.
    third.run("kubectl", "create", "secret", "generic", "written-on-cp3",
              "--from-literal=k=from-cp3")
    for node in (second, third):
        got = node.wait_for("the ConfigMap through this API server", lambda n=node: n.kubectl(
            "get", "configmap", "written-on-cp1", "-o", "jsonpath={.data.k}", check=False),
            timeout=60)
        assert got == "from-cp1"
    for node in (first, second):
        got = node.wait_for("the Secret through this API server", lambda n=node: n.kubectl(
            "get", "secret", "written-on-cp3", "-o", "jsonpath={.data.k}", check=False),
            timeout=60)
        assert got == "ZnJvbS1jcDM="  # base64 of from-cp3


def test_a_control_plane_leaves_and_the_other_two_keep_serving(plane: Plane) -> None:
    first, second, third = plane.nodes
    old_ca = (third.root / "data" / "certs" / "ca.crt").read_bytes()
    out = third.run("leave", timeout=300)
    assert "mk-cp3 left the cluster and runs as a fresh single node" in out.stdout, out.stderr

    for node in (first, second):
        st = node.wait_for("the leaver gone from the voters", lambda n=node: _with_voters(
            n, ["mk-cp1", "mk-cp2"]), timeout=60)
        assert [n["name"] for n in st["nodes"]] == ["mk-cp1", "mk-cp2"], node.name
        # Both remaining voters are needed for a write now, and a write goes through.
        node.run("kubectl", "create", "configmap", f"after-leave-{node.name}",
                 "--from-literal=k=v")
    assert first.kubectl("get", "configmap", "after-leave-mk-cp2", "-o",
                         "jsonpath={.data.k}") == "v"
    third.run("status", "--wait-ready", "--timeout", "240", timeout=300)
    st = status(third)
    assert st["nodes"] == [{"name": "mk-cp3", "role": "control-plane", "ready": True,
                            "datastore": "voter"}]
    assert st["high-availability"] == {"enabled": False, "voters": ["mk-cp3"], "standbys": []}
    assert (third.root / "data" / "certs" / "ca.crt").read_bytes() != old_ca
    # The fresh node's etcd is a cluster of one, not a member trying to reach the old peers.
    gone = third.run("kubectl", "get", "configmap", "written-on-cp1", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stderr


def _with_voters(node: TestNode, voters: list[str]) -> dict[str, Any] | None:
    st = status(node)
    return st if st["high-availability"]["voters"] == voters else None


def _all_three_voters(node: TestNode) -> dict[str, Any] | None:
    st = _with_voters(node, list(NAMES))
    return st if st and st["high-availability"]["enabled"] and \
        not st["high-availability"]["standbys"] else None


def test_the_control_plane_that_left_joins_again_and_ha_returns(plane: Plane) -> None:
    first, _, third = plane.nodes
    # The leaver runs a cluster of only itself, holding nothing a user made: join discards it.
    join = timed_join(third, plane.lan.join_string(first))
    assert join.returncode == 0, join.output
    assert "discarding the single-node cluster this node ran on its own" in join.output
    assert "this node is an etcd voter; voters: mk-cp1 mk-cp2 mk-cp3; high availability: yes" \
        in join.output, join.output
    first.wait_for("three voters again", lambda: _all_three_voters(first), timeout=60)
    assert third.kubectl("get", "configmap", "written-on-cp1", "-o", "jsonpath={.data.k}",
                         ) == "from-cp1"


def test_a_killed_control_plane_is_removed_by_force_and_joins_again(plane: Plane) -> None:
    first, second, third = plane.nodes
    kill_machine(second)  # SIGKILL to each of its processes, by pid
    out = first.run("remove-node", second.name, "--force", timeout=120)
    assert f"removed the datastore member {second.name}" in out.stderr, out.stderr
    for node in (first, third):
        st = node.wait_for("the killed node gone from the voters", lambda n=node: _with_voters(
            n, ["mk-cp1", "mk-cp3"]), timeout=60)
        assert [n["name"] for n in st["nodes"]] == ["mk-cp1", "mk-cp3"], node.name
    # A new machine with the same name and address joins; HA returns to three voters.
    replace_machine(second)
    join = timed_join(second, plane.lan.join_string(third))
    assert join.returncode == 0, join.output
    assert "this node is an etcd voter; voters: mk-cp1 mk-cp2 mk-cp3; high availability: yes" \
        in join.output, join.output
    for node in (first, third):
        node.wait_for("three voters again", lambda n=node: _all_three_voters(n), timeout=60)
    assert second.kubectl("get", "configmap", "after-leave-mk-cp2", "-o",
                          "jsonpath={.data.k}") == "v"
