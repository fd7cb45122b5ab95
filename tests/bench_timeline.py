"""The timeline of one start, seen from inside the node's network namespace.

``python -m tests.bench_timeline T0 TIMEOUT`` (run with the node's environment, in
its namespace) polls every POLL seconds until the Node is Ready or TIMEOUT
seconds pass, and prints one JSON object: each event's name -> seconds after
the wall-clock time T0 (when the bench ran ``microkube start``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from microkube.errors import MicrokubeError
from microkube.paths import Paths

POLL = 0.05

# The events of a start, in the order they happen; the first is the node's datastore's
# ("kine serving" on SQLite, PostgreSQL or MySQL; none on an external etcd).
EVENTS = ("etcd serving", "API server ready", "Node registered", "pod CIDR on the Node",
          "CNI config written", "Node Ready")
KINE_SERVING = "kine serving"


def _probes(paths: Paths) -> dict[str, Callable[[], bool]]:
    """One cheap check per event; each True once its event has happened."""
    from microkube.datastore.settings import ETCD, KINE_KINDS
    from microkube.kube.api import KubeApi
    from microkube.services.base import NodeContext
    from microkube.services.etcd import Etcd
    from microkube.services.kine import Kine
    from microkube.services.kubernetes import part_ready

    ctx = NodeContext.load(paths)
    api = KubeApi.for_admin(paths, timeout=0.5)
    node: dict[str, Any] = {}

    def node_object() -> dict[str, Any]:
        if not node.get("spec", {}).get("podCIDR") or not _ready(node):
            node.clear()
            node.update(api.get(f"/api/v1/nodes/{ctx.node.node_name}") or {})
        return node

    datastore: dict[str, Callable[[], bool]] = {}
    if ctx.node.datastore == ETCD:
        datastore["etcd serving"] = lambda: Etcd().ready(ctx)
    elif ctx.node.datastore in KINE_KINDS:
        datastore[KINE_SERVING] = lambda: Kine().ready(ctx)
    return {
        **datastore,
        "API server ready": lambda: part_ready(ctx, "kube-apiserver"),
        "Node registered": lambda: bool(node_object()),
        "pod CIDR on the Node": lambda: bool(node_object().get("spec", {}).get("podCIDR")),
        # The flannel CNI plugin can give a pod an address once flanneld wrote its subnet.
        "CNI config written": lambda: paths.flannel_subnet_file.exists(),
        "Node Ready": lambda: _ready(node_object()),
    }


def _ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions", []))


def watch(paths: Paths, t0: float, timeout: float) -> dict[str, float]:
    """Poll until every event has happened or ``timeout`` s after ``t0`` (wall clock);
    returns event -> seconds after ``t0`` for the events seen."""
    seen: dict[str, float] = {}
    probes: dict[str, Callable[[], bool]] | None = None
    while time.time() - t0 < timeout and (probes is None or len(seen) < len(probes)):
        try:
            probes = probes or _probes(paths)
            for name, check in probes.items():
                if name not in seen and check():
                    seen[name] = round(time.time() - t0, 2)
        except (MicrokubeError, OSError):
            pass  # not set up yet: start has not written the node's settings or its CA
        time.sleep(POLL)
    return {name: seen[name] for name in (KINE_SERVING, *EVENTS) if name in seen}


def main(argv: list[str]) -> int:
    t0, timeout = float(argv[0]), float(argv[1])
    print(json.dumps(watch(Paths.from_env(), t0, timeout)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
