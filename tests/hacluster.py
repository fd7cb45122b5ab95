"""One cluster of three control planes (and, once asked for, a worker) on a test LAN, shared by
the HA tests in tests/cluster/ha/ instead of each module forming its own (forming one takes a
minute or more on two cores).

The control-plane join tests watch it form and change its membership; the API failover and
power loss tests then take it over. A module that takes it over first calls
:meth:`HaLab.healthy`: it starts any node that is not running, and waits until every control
plane sees the three voting and every Node is Ready, so it never builds on what an earlier
module left broken (that module's failure then fails the next one's setup, within bounded
waits, instead of hiding in it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import yaml

from tests import powerloss
from tests.failover import balancer_state
from tests.multinode import Cluster, TimedJoin, timed_join
from tests.testnode import TestNode, wait_for

NAMES = ("mk-cp1", "mk-cp2", "mk-cp3")
WORKER = "mk-cpw"


def status(node: TestNode) -> dict[str, Any]:
    """``microkube status --format yaml`` of ``node``, parsed (the command must exit 0)."""
    doc: dict[str, Any] = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    return doc


@dataclass
class HaLab:
    """The shared cluster: its LAN, the control planes in NAMES order, the second's and the
    third's join, the first node's status once the second had joined, and the worker once
    :meth:`with_worker` joined it."""

    lan: Cluster
    planes: list[TestNode]
    joins: list[TimedJoin]
    status_at_two: dict[str, Any]
    worker: TestNode | None = None

    @property
    def nodes(self) -> list[TestNode]:
        return [*self.planes, *([self.worker] if self.worker else [])]

    def with_worker(self) -> TestNode:
        """The worker, joined through the first control plane the first time it is asked for;
        returned once it is Ready and its load balancer knows and checked every API server."""
        if self.worker is None:
            worker = self.lan.add(WORKER)
            out = self.lan.join_worker(worker, self.lan.join_string(self.planes[0]))
            assert out.returncode == 0, out.stdout + out.stderr
            self.worker = worker
            every = sorted(f"{p.ip}:16443" for p in self.planes)
            wait_for("the worker's balancer to know and check every API server",
                     lambda: sorted(balancer_state(worker).get("healthy", [])) == every
                     and sorted(balancer_state(worker).get("servers", [])) == every,
                     timeout=60, every=0.5)
            worker.run("status", "--wait-ready", "--timeout", "120", timeout=150)
        return self.worker

    def healthy(self, timeout: float = 240) -> None:
        """Bring the cluster back to health if a module before left it otherwise, and check it:
        ``microkube start`` on any set-up node whose status says it does not run, then wait
        until every control plane's status names the three voters and, through the first,
        every Node is Ready, and the worker's balancer finds every API server healthy. All of
        it within ``timeout`` s; raises AssertionError (from the waits) if it does not come
        back, so a module that broke the cluster fails the next one's setup, not a hang."""
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(1.0, deadline - time.monotonic())

        for node in self.nodes:
            st = yaml.safe_load(node.run("status", "--format", "yaml", check=False,
                                         timeout=30).stdout) or {}
            set_up = (node.root / "data" / "var" / "node.yaml").exists()
            if set_up and not (st.get("microkube") or {}).get("running"):
                node.run("start", check=False, timeout=min(150, left()))
        for node in self.planes:
            node.wait_for(f"{node.name} sees the three voters",
                          lambda n=node: powerloss.three_voters(n, NAMES), timeout=left())
        powerloss.wait_all_ready(self.nodes, since=0.0, timeout=left())
        worker = self.worker
        if worker is not None:
            every = sorted(f"{p.ip}:16443" for p in self.planes)
            wait_for("the worker's balancer to find every API server healthy", lambda: sorted(
                balancer_state(worker).get("healthy", [])) == every, timeout=left(), every=0.5)


def form(lan: Cluster) -> HaLab:
    """Start the first of NAMES on ``lan`` and join the other two to it as control planes, one
    after the other, keeping each join's progress and the first node's status in between."""
    planes = [lan.add(name) for name in NAMES]
    planes[0].start()
    joins: list[TimedJoin] = []
    at_two: dict[str, Any] = {}
    for joiner in planes[1:]:
        join = timed_join(joiner, lan.join_string(planes[0]))
        assert join.returncode == 0, join.output
        joins.append(join)
        if not at_two:
            at_two = status(planes[0])
    return HaLab(lan, planes, joins, at_two)
