"""Three control planes and a worker outlive their parts: two control planes lost at once (no
quorum, then back), and the whole site losing power (every process of every node killed at
once, the nodes started again in another order). Nothing the cluster held is lost.

The HA tests' cluster (tests/hacluster.py) is taken over last, checked healthy, and seeded with
a known set of objects (tests/powerloss.py: 200 ConfigMaps, three Deployments and their
Services, a Pod bound to the worker). The tests run in order: each leaves the cluster whole
and Ready for the next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests import powerloss
from tests.hacluster import NAMES, WORKER, HaLab
from tests.multinode import Cluster
from tests.testnode import TestNode


@dataclass
class Site:
    lan: Cluster
    planes: list[TestNode]
    worker: TestNode
    seeded: powerloss.Seen  # the seed as it was before anything was lost

    @property
    def nodes(self) -> list[TestNode]:
        return [*self.planes, self.worker]


def _status(node: TestNode) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    out = node.run("status", "--format", "yaml", check=False, timeout=30).stdout
    return yaml.safe_load(out), time.monotonic() - began


@pytest.fixture(scope="module")
def site(ha: HaLab) -> Site:
    ha.healthy()
    worker = ha.with_worker()
    powerloss.seed(ha.planes[0], pinned_to=[WORKER])
    return Site(ha.lan, ha.planes, worker, powerloss.look(ha.planes[0]))


def test_two_control_planes_lost_stop_writes_and_status_says_so_in_one_line(site: Site) -> None:
    survivor, second, third = site.planes
    powerloss.power_cut([second, third])

    st, seconds = _status(survivor)
    line = ("no quorum: 1 of 3 datastore voters answer (missing: mk-cp2, mk-cp3); the API "
            "refuses writes until 1 more is back")
    assert st["microkube"] == {"running": False, "ready": False, "state": "no-quorum",
                               "message": line}, st
    assert st["datastore"]["quorum"] == {"ok": False, "voters": 3, "needed": 2,
                                         "answering": ["mk-cp1"],
                                         "missing": ["mk-cp2", "mk-cp3"]}
    pretty = survivor.run("status", check=False, timeout=30)
    assert pretty.returncode == 3 and pretty.stdout.splitlines()[0] == line, pretty.stdout
    # The whole command, Python's start included, in a network namespace.
    print(f"\nstatus without a quorum answered in {seconds:.2f} s")
    assert seconds < 2.0

    refused = survivor.run("kubectl", "--request-timeout=5s", "create", "configmap",
                           "during-the-outage", check=False, timeout=60)
    assert refused.returncode != 0

    # One comes back: a quorum again, writes go through, and nothing was lost.
    back = second.run("start", timeout=120)
    assert "waiting for the datastore's quorum" not in back.stderr, back.stderr
    survivor.wait_for("writes through the survivor", lambda: survivor.run(
        "kubectl", "--request-timeout=5s", "create", "configmap", "after-the-outage",
        timeout=60), timeout=120)
    assert powerloss.look(survivor).lost(site.seeded) == []
    st, _ = _status(survivor)
    assert st["datastore"]["quorum"]["ok"] and st["datastore"]["quorum"]["missing"] == ["mk-cp3"]

    third.run("start", timeout=120)
    survivor.wait_for("three voters answering", lambda: _status(survivor)[0]["datastore"]
                      ["quorum"]["missing"] == [], timeout=120)
    for node in site.nodes:
        node.run("status", "--wait-ready", "--timeout", "180", timeout=210)


def test_the_site_loses_power_and_comes_back_with_nothing_lost(site: Site) -> None:
    killed = powerloss.power_cut(site.nodes)
    # The last control plane first: alone it cannot serve, and start says it waits for its
    # peers, and succeeds. Then the others, the worker first, each without waiting.
    first = site.planes[-1]
    on = powerloss.power_on([first])
    assert "waiting for the datastore's quorum" in on.outputs[first.name].stderr, on.outputs
    assert _status(first)[0]["microkube"]["state"] == "no-quorum"
    powerloss.power_on([site.worker, *reversed(site.planes[:-1])])
    ready_s = powerloss.wait_all_ready(site.nodes, on.began, timeout=300)
    print(f"\nsite power loss ({killed} processes killed): every node Ready {ready_s:.1f} s "
          "after the first start")

    for node in site.planes:
        seen = powerloss.look(node)
        assert seen.lost(site.seeded) == [], node.name
        assert len(seen.configmaps) == powerloss.SEED_CONFIGMAPS
    site.nodes[0].wait_for("the seed's containers running again", lambda: powerloss.
                           workloads_back(site.nodes[0], on.began, site.seeded), timeout=180)
    assert powerloss.three_voters(site.nodes[0], NAMES)
