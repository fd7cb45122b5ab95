"""Nodes of a cluster whose address moves while they are stopped.

One cluster (tests/multinode.py) for the module: a control plane, a worker and a
second control plane (a standby: an etcd learner). The worker moves and comes back
Ready, its serving certificate re-issued by the control plane (pods' logs and exec).
The standby moves and comes back: the voter records its new etcd peer URL
before it starts (datastore/peermove.py). Last, the standby moves again while the
voter is down: its start is refused with one line that names the fix, and nothing
is left running to crash-loop.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from microkube.paths import Ports
from tests import netns
from tests.addressmove import etcd_peer_urls, internal_ip, node_ready
from tests.multinode import SUBNET, Cluster, cluster, timed_join
from tests.testnode import TestNode, require_root_and_node_built
from tests.workloads import client_pod

CP, WORKER, STANDBY = "mk-acp1", "mk-aw1", "mk-acp2"


@dataclass
class Lan:
    lan: Cluster
    cp: TestNode
    worker: TestNode
    standby: TestNode
    timings: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lan]:
    require_root_and_node_built()
    with cluster(Path(tmp_path_factory.mktemp("lan"))) as c:
        cp, worker, standby = c.add(CP), c.add(WORKER), c.add(STANDBY)
        cp.start()
        c.join_worker(worker, c.join_string(cp))
        join = timed_join(standby, c.join_string(cp))
        assert join.returncode == 0, join.output
        moved = Lan(c, cp, worker, standby)
        yield moved
        print(f"\naddress change timings (s): {moved.timings}")


def _move_and_start(lan: Lan, node: TestNode, old: str, new: str,
                    check: bool = True) -> subprocess.CompletedProcess[str]:
    """Stop ``node``, move its address from ``old`` to ``new``, and start it."""
    node.stop()
    netns.move_address(node.netns, old, new)
    began = time.monotonic()
    out = node.run("start", "--wait-ready", "--timeout", "240", timeout=270, check=check)
    lan.timings[f"{node.name} to {new}: start"] = time.monotonic() - began
    return out


def test_a_worker_whose_address_moved_comes_back_ready(lan: Lan) -> None:
    new = f"{SUBNET}.102"
    out = _move_and_start(lan, lan.worker, lan.worker.ip, new)
    said = out.stdout + out.stderr
    assert f"it now uses {new}" in said, said
    lan.cp.wait_for("the worker Ready at its new address",
                    lambda: internal_ip(lan.cp, WORKER) == new and node_ready(lan.cp, WORKER),
                    timeout=120)
    # Its serving certificate was re-issued for the new address by the control plane, so
    # the API server reaches the kubelet there: logs and exec work.
    assert "by the control plane at" in said and "kubelet.crt" in said, said
    lan.cp.apply(client_pod("moved-client", WORKER))
    lan.cp.kubectl("wait", "--for=condition=Ready", "pod/moved-client", "--timeout=120s",
                   timeout=150)
    lan.cp.wait_for("the worker's pod logs",
                    lambda: "moved-client started" in lan.cp.kubectl("logs", "moved-client"),
                    timeout=60)
    assert lan.cp.kubectl("exec", "moved-client", "--", "hostname").strip() == "moved-client"


def test_a_standby_control_plane_whose_address_moved_has_its_peer_url_recorded(lan: Lan) -> None:
    new = f"{SUBNET}.103"
    peer = f"https://{new}:{Ports().datastore_peer}"
    out = _move_and_start(lan, lan.standby, lan.standby.ip, new)
    said = out.stdout + out.stderr
    assert f"etcd member {STANDBY}: peer URL " in said and f"-> {peer}" in said, said
    assert etcd_peer_urls(lan.cp)[STANDBY] == [peer]
    lan.cp.wait_for("the standby Ready at its new address",
                    lambda: internal_ip(lan.cp, STANDBY) == new and node_ready(lan.cp, STANDBY),
                    timeout=120)
    # Its etcd follows the voter again: it answers the member list (through the voter).
    assert etcd_peer_urls(lan.standby)[CP] == [f"https://{lan.cp.ip}:{Ports().datastore_peer}"]


def test_a_control_plane_that_moved_while_the_voters_are_down_refuses_in_one_line(
        lan: Lan) -> None:
    lan.cp.stop()
    out = _move_and_start(lan, lan.standby, f"{SUBNET}.103", f"{SUBNET}.104", check=False)
    assert out.returncode != 0, out.stdout
    lines = out.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert errors == lines[-1:] and "did not record its new peer URL" in errors[0], out.stderr
    assert f"run 'microkube remove-node {STANDBY} --force' on another control plane" in errors[0]
    # Nothing was started that could crash-loop: no supervisor, no daemon, now or a little later.
    assert not lan.standby.processes()
    time.sleep(5)
    assert not lan.standby.processes()
