"""Two real control planes on one real PostgreSQL, on a test LAN: HA rests on the database.

One cluster is shared by the module (tests/multinode.py): PostgreSQL runs on a host
of its own on the LAN (a namespace on the bridge, tests/databases.py), over TLS
with a test CA, so each node reaches it only with the CA file and the password.
The first control plane starts from a launch file naming it; the second joins
with ``add-node``/``join`` and gets the endpoint, the CA file and the cluster's
shared keys over the CA-pinned channel, with no etcd anywhere. Both API servers
then serve the same objects. Last, the database goes away while both run:
``status`` and the agent's log name it, and both recover once it is back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from microkube.datastore.membership import cache_file
from microkube.paths import Paths
from tests.databases import PASSWORD, Database, postgres
from tests.hacluster import status
from tests.lanhost import LanHost
from tests.multinode import SUBNET, Cluster, TimedJoin, cluster, timed_join
from tests.testnode import SNAP_TREE, TestNode, require_built, require_root_and_node_built

NAMES = ("mk-pg1", "mk-pg2")
DB_IP = f"{SUBNET}.200"


@dataclass
class Plane:
    lan: Cluster
    db: Database
    nodes: list[TestNode]
    join: TimedJoin
    started: float  # time.monotonic() when the module's fixture began


def _any_status(node: TestNode) -> dict[str, Any]:
    """``status --format yaml`` whatever its exit code (3: not running)."""
    doc: dict[str, Any] = yaml.safe_load(node.run("status", "--format", "yaml",
                                                  check=False).stdout)
    return doc


def _agent_log(node: TestNode) -> Path:
    return Paths.from_env(node.env).log_file("cluster-agent")


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    require_root_and_node_built()
    require_built(SNAP_TREE / "bin" / "kine")
    began = time.monotonic()
    base = Path(tmp_path_factory.mktemp("pglan"))
    with cluster(base) as lan, contextlib.ExitStack() as stack:
        host = LanHost(f"mk-pgdb-{lan.tag}", DB_IP, lan.bridge_ns, f"pdb-{lan.tag}")
        stack.callback(host.delete)
        db = stack.enter_context(postgres(host.netns, DB_IP, tls=True))
        nodes = [lan.add(name) for name in NAMES]
        # The nodes let go of the database before it stops.
        stack.callback(lambda: [n.stop() for n in reversed(nodes)])
        assert db.ca_file is not None
        launch = base / "launch.yaml"
        launch.write_text(yaml.safe_dump({"version": "0.1.0", "datastore": {
            "endpoint": db.endpoint, "caFile": str(db.ca_file)}}))
        nodes[0].run("start", "--config", str(launch), "--wait-ready", "--timeout", "240",
                      timeout=300)
        join = timed_join(nodes[1], lan.join_string(nodes[0]))
        assert join.returncode == 0, join.output
        yield Plane(lan, db, nodes, join, began)
    print(f"\nexternal-datastore module: {time.monotonic() - began:.0f} s")


def test_the_second_control_plane_joins_on_the_shared_database(plane: Plane) -> None:
    out = plane.join.output
    shown = plane.db.endpoint.replace(PASSWORD, "***")
    for line in ("the cluster CA matches the join string's fingerprint",
                 f"the cluster's CAs and keys received, and its datastore {shown}, which this "
                 "node reaches", "node mk-pg2 is Ready",
                 "mk-pg2 joined the cluster as a control plane (sharing its postgres datastore)"):
        assert line in out, out
    assert "learner" not in out and "etcd" not in out, out
    assert PASSWORD not in out
    joiner = plane.nodes[1]
    creds = joiner.root / "data" / "credentials"
    for path in (creds / "datastore.json", creds / "datastore" / "ca.crt"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert plane.db.ca_file is not None
    assert (creds / "datastore" / "ca.crt").read_bytes() == plane.db.ca_file.read_bytes()
    # No etcd on either node, no member list, and the agents' reconcilers did not act.
    for node in plane.nodes:
        names = set(node.named())
        assert "kine" in names and "etcd" not in names, (node.name, names)
        assert not cache_file(Paths.from_env(node.env)).exists()
        agent_log = _agent_log(node).read_text()
        assert "reconcile" not in agent_log and "promot" not in agent_log
    print(f"\nsecond control plane, join to Node Ready: {plane.join.at('is Ready'):.1f} s; "
          f"whole join {plane.join.seconds:.1f} s")


def test_status_says_ha_rests_on_the_database(plane: Plane) -> None:
    shown = plane.db.endpoint.replace(PASSWORD, "***")
    for node in plane.nodes:
        node.run("status", "--wait-ready", "--timeout", "90", timeout=120)
        st = status(node)
        assert st["datastore"] == {"kind": "postgres", "endpoint": shown, "problem": ""}
        assert st["high-availability"] == {"enabled": True, "voters": [], "standbys": [],
                                           "rests-on": shown}, node.name
        assert st["nodes"] == [{"name": n, "role": "control-plane", "ready": True,
                                "datastore": "shared"} for n in NAMES], node.name
        pretty = node.run("status").stdout
        assert "high-availability: yes\n  control planes: mk-pg1 mk-pg2 (sharing the external " \
               "datastore: high availability rests on it)" in pretty, pretty
        assert PASSWORD not in pretty


def test_an_object_written_through_one_api_server_is_read_through_the_other(
        plane: Plane) -> None:
    first, second = plane.nodes
    first.run("kubectl", "create", "configmap", "written-on-pg1", "--from-literal=k=from-pg1")
    # A Secret needs the same encryption key on both API servers.
    second.run("kubectl", "create", "secret", "generic", "written-on-pg2",
               "--from-literal=k=from-pg2")
    got = second.wait_for("the ConfigMap through the second API server", lambda: second.kubectl(
        "get", "configmap", "written-on-pg1", "-o", "jsonpath={.data.k}", check=False),
        timeout=60)
    assert got == "from-pg1"
    got = first.wait_for("the Secret through the first API server", lambda: first.kubectl(
        "get", "secret", "written-on-pg2", "-o", "jsonpath={.data.k}", check=False), timeout=60)
    assert got == "ZnJvbS1wZzI="  # base64 of from-pg2
    # One table holds them: the rows both kines wrote.
    rows = plane.db.sql("SELECT name FROM kine WHERE name LIKE '%written-on-pg%' ORDER BY name")
    assert rows.split() == ["/registry/configmaps/default/written-on-pg1",
                            "/registry/secrets/default/written-on-pg2"]


def test_a_database_that_goes_away_is_named_and_both_nodes_recover(plane: Plane) -> None:
    shown = plane.db.endpoint.replace(PASSWORD, "***")
    problem = f"datastore {shown} unreachable: connection refused"
    plane.db.stop()
    went = time.monotonic()
    try:
        for node in plane.nodes:
            st = node.wait_for("status to name the database", lambda n=node: (
                s := _any_status(n))["datastore"]["problem"] == problem and s, timeout=60)
            assert not st["microkube"]["ready"]
            pretty = node.wait_for("the API server to notice", lambda n=node: (
                p := n.run("status", check=False).stdout).startswith(
                "microkube is not running") and p, timeout=60)
            assert problem in pretty.splitlines()[0], pretty
            log = _agent_log(node)
            node.wait_for("the agent's log to name the database",
                          lambda lg=log: problem in lg.read_text(), timeout=30)
        named = time.monotonic() - went
    finally:
        plane.db.start()
    back = time.monotonic()
    for node in plane.nodes:
        node.run("status", "--wait-ready", "--timeout", "180", timeout=200)
        assert status(node)["datastore"]["problem"] == ""
        # The agent checks every 2 s: its line may follow the API server's Ready.
        log = _agent_log(node)
        node.wait_for("the agent's log to say the database is back",
                      lambda lg=log: f"datastore {shown} answers again" in lg.read_text(),
                      timeout=30)
    recovered = time.monotonic() - back
    first, second = plane.nodes
    second.run("kubectl", "create", "configmap", "after-outage", "--from-literal=k=v")
    assert first.wait_for("a write after the outage", lambda: first.kubectl(
        "get", "configmap", "after-outage", "-o", "jsonpath={.data.k}", check=False),
        timeout=60) == "v"
    print(f"\ndatabase down: named by both nodes within {named:.1f} s; both Ready again "
          f"{recovered:.1f} s after it returned")
