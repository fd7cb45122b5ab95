"""Three real control planes on a test LAN: each joins, HA turns on at the third, and every
API server serves the same cluster.

One cluster (tests/hacluster.py) is shared by the HA tests, and this module runs first: the
first node starts, the second joins (and stays a standby: two voters would be worse than
one), the third joins (and the leader's agent promotes both learners). Last, the
membership changes: the third leaves and joins again (its own single-node cluster
discarded), then the second is killed, removed with ``remove-node --force`` and
replaced by a new machine with the same name and address, leaving three voters for the
API failover and power loss tests.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.hacluster import NAMES, HaLab, status
from tests.multinode import kill_machine, replace_machine, timed_join
from tests.testnode import TestNode


def _etcd_servers(node: TestNode) -> str:
    spec = json.loads((node.root / "common" / "run" / "kubelite.json").read_text())
    flags = [f for f in spec["parts"]["kube-apiserver"] if f.startswith("--etcd-servers=")]
    return flags[-1].split("=", 1)[1]


def test_the_second_control_plane_is_a_standby_and_ha_is_off(ha: HaLab) -> None:
    out = ha.joins[0].output
    for line in ("the cluster CA matches the join string's fingerprint",
                 "this node's etcd member was added as a learner", "node mk-cp2 is Ready",
                 "this node is an etcd standby; voters: mk-cp1; high availability: no",
                 "mk-cp2 joined the cluster as a control plane (etcd standby)"):
        assert line in out, out
    at_two = ha.status_at_two["high-availability"]
    assert at_two == {"enabled": False, "voters": ["mk-cp1"], "standbys": ["mk-cp2"]}


def test_the_third_control_plane_makes_three_voters_and_ha_is_on(ha: HaLab) -> None:
    out = ha.joins[1].output
    assert "this node is an etcd voter; voters: mk-cp1 mk-cp2 mk-cp3; high availability: yes" \
        in out, out
    for node in ha.planes:
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
    ready = [j.at("is Ready") for j in ha.joins]
    settled = ha.joins[1].at("high availability: yes")
    print(f"\ncontrol plane join to Node Ready: {ready[0]:.1f} s (second), {ready[1]:.1f} s "
          f"(third); third join to three voters: {settled:.1f} s")


def test_an_object_written_through_one_api_server_is_read_through_the_others(
        ha: HaLab) -> None:
    first, second, third = ha.planes
    # Each node's kubectl talks to its own API server: loopback, in the node's own namespace.
    for node in ha.planes:
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


def test_a_control_plane_leaves_and_the_other_two_keep_serving(ha: HaLab) -> None:
    first, second, third = ha.planes
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


def test_the_control_plane_that_left_joins_again_and_ha_returns(ha: HaLab) -> None:
    first, _, third = ha.planes
    # The leaver runs a cluster of only itself, holding nothing a user made: join discards it.
    join = timed_join(third, ha.lan.join_string(first))
    assert join.returncode == 0, join.output
    assert "discarding the single-node cluster this node ran on its own" in join.output
    assert "this node is an etcd voter; voters: mk-cp1 mk-cp2 mk-cp3; high availability: yes" \
        in join.output, join.output
    first.wait_for("three voters again", lambda: _all_three_voters(first), timeout=60)
    assert third.kubectl("get", "configmap", "written-on-cp1", "-o", "jsonpath={.data.k}",
                         ) == "from-cp1"


def test_a_killed_control_plane_is_removed_by_force_and_joins_again(ha: HaLab) -> None:
    first, second, third = ha.planes
    kill_machine(second)  # SIGKILL to each of its processes, by pid
    out = first.run("remove-node", second.name, "--force", timeout=120)
    assert f"removed the datastore member {second.name}" in out.stderr, out.stderr
    for node in (first, third):
        st = node.wait_for("the killed node gone from the voters", lambda n=node: _with_voters(
            n, ["mk-cp1", "mk-cp3"]), timeout=60)
        assert [n["name"] for n in st["nodes"]] == ["mk-cp1", "mk-cp3"], node.name
    # A new machine with the same name and address joins; HA returns to three voters.
    replace_machine(second)
    join = timed_join(second, ha.lan.join_string(third))
    assert join.returncode == 0, join.output
    assert "this node is an etcd voter; voters: mk-cp1 mk-cp2 mk-cp3; high availability: yes" \
        in join.output, join.output
    for node in (first, third):
        node.wait_for("three voters again", lambda n=node: _all_three_voters(n), timeout=60)
    assert second.kubectl("get", "configmap", "after-leave-mk-cp2", "-o",
                          "jsonpath={.data.k}") == "v"
