"""``make bench``'s power-loss figures on real nodes (tests/powerloss.py): how long a site of
three control planes takes to be Ready again after every process of every node was killed at
once, and how long a single node takes after the same.

Each run seeds the cluster first (200 ConfigMaps, three Deployments and their Services) and
counts what was lost afterwards (0 is the only right answer). The nodes start again in the
reverse order, each ``microkube start`` launched without waiting on the others. The time runs
from the first ``start`` until every node's status is ready and every Node posted Ready after
the power came back.

Run alone: ``sudo .venv/bin/python -m tests.bench_power`` (after ``make components``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests import powerloss
from tests.multinode import cluster
from tests.testnode import TestNode

NAMES = ("mk-bench-pl1", "mk-bench-pl2", "mk-bench-pl3")
WORKER = "mk-bench-plw"


def _recover(nodes: list[TestNode]) -> dict[str, Any]:
    """Seed (a Pod bound to each node after the first), cut the power of ``nodes``, start
    them in reverse order; the figures."""
    powerloss.seed(nodes[0], pinned_to=[n.name for n in nodes[1:]])
    before = powerloss.look(nodes[0])
    killed = powerloss.power_cut(nodes)
    on = powerloss.power_on(list(reversed(nodes)))
    ready_s = powerloss.wait_all_ready(nodes, on.began, timeout=300)
    nodes[0].wait_for("the seed's containers running again",
                      lambda: powerloss.workloads_back(nodes[0], on.began, before), timeout=180)
    lost = powerloss.look(nodes[0]).lost(before)
    return {"nodes": len(nodes), "processes_killed": killed, "ready_s": round(ready_s, 1),
            "objects": len(before.configmaps) + len(before.services) + len(before.ready),
            "lost": len(lost)}


def site_power_loss_figures(base: Path) -> dict[str, Any]:
    """Three control planes and a worker lose power at once and start again in the reverse
    order (the worker first)."""
    with cluster(base) as lan:
        planes = powerloss.form_control_planes(lan, NAMES)
        return _recover([*planes, powerloss.add_worker(lan, planes[0], WORKER)])


def single_node_power_loss_figures(base: Path) -> dict[str, Any]:
    """One node loses power and starts again."""
    node = TestNode(name="mk-bench-pl", root=base / "root", ip="10.214.0.2",
                    netns=f"mk-bench-pl-{os.getpid()}")
    node.create_netns()
    try:
        node.start()
        return _recover([node])
    finally:
        node.destroy()


def render(figures: dict[str, Any]) -> str:
    """One line per figure for the bench report."""
    out = []
    site, single = figures.get("site"), figures.get("single")
    if site:
        out.append(f"power loss, three control planes and a worker ({site['processes_killed']} "
                   f"processes killed at once, started again in reverse order): every node "
                   f"Ready {site['ready_s']} s after the first start; {site['lost']} of "
                   f"{site['objects']} objects lost")
    if single:
        out.append(f"power loss, a single node ({single['processes_killed']} processes killed "
                   f"at once): Ready {single['ready_s']} s after start; {single['lost']} of "
                   f"{single['objects']} objects lost")
    return "\n".join(out)


def figures(base: Path) -> dict[str, Any]:
    """Both runs, each in a directory of its own below ``base``."""
    return {"single": single_node_power_loss_figures(base / "single"),
            "site": site_power_loss_figures(base / "site")}


def main() -> int:
    """Both runs; the figures as JSON and lines."""
    with tempfile.TemporaryDirectory(prefix="mk-bench-power-") as tmp:
        result = figures(Path(tmp))
    print(json.dumps(result, indent=1))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
