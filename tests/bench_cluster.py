"""``make bench``'s cluster figures: a control plane's ``join`` to Node Ready, and the third
control plane's ``join`` to three etcd voters, on real nodes on a test LAN (tests/multinode.py).

Run alone: ``sudo .venv/bin/python -m tests.bench_cluster`` (after ``make components``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.multinode import cluster, timed_join

NAMES = ("mk-bench-cp1", "mk-bench-cp2", "mk-bench-cp3")


def control_plane_join_figures(base: Path) -> dict[str, Any]:
    """Start one node, join two control planes to it; seconds from each ``join`` to its
    Node Ready, and from the third's ``join`` to three voters (high availability)."""
    with cluster(base) as lan:
        nodes = [lan.add(name) for name in NAMES]
        nodes[0].start()
        figures: dict[str, Any] = {}
        for key, joiner in (("second", nodes[1]), ("third", nodes[2])):
            join = timed_join(joiner, lan.join_string(nodes[0]))
            if join.returncode != 0:
                raise RuntimeError(f"{joiner.name}'s join failed:\n{join.output}")
            figures[f"{key}_join_to_ready_s"] = round(join.at("is Ready") or -1, 1)
            figures[f"{key}_join_total_s"] = round(join.seconds, 1)
        figures["third_join_to_three_voters_s"] = round(
            join.at("high availability: yes") or -1, 1)
        return figures


def render(figures: dict[str, Any]) -> str:
    """One line for the bench report."""
    return (f"control plane join to Node Ready: {figures['second_join_to_ready_s']} s "
            f"(second), {figures['third_join_to_ready_s']} s (third) (target <= 30 s); "
            f"third control plane's join to three voters: "
            f"{figures['third_join_to_three_voters_s']} s")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mk-bench-cluster-") as tmp:
        figures = control_plane_join_figures(Path(tmp))
    print(json.dumps(figures, indent=1))
    print(render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
