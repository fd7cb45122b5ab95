"""The deploy folder's latency: seconds from a manifest file written until its object exists.

``python -m tests.bench_manifests RUNS`` (run with the node's environment, in its
network namespace, so it reaches the API server) writes RUNS manifest files one
after another, each a ConfigMap, polls the API every POLL seconds until the
ConfigMap exists, removes the file, and prints the seconds of each run as a JSON list.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import yaml

from microkube.kube.api import KubeApi
from microkube.paths import Paths

POLL = 0.01
TIMEOUT = 30.0


def measure(paths: Paths, runs: int) -> list[float]:
    """Seconds from each file written (and closed) until its ConfigMap answers 200."""
    api = KubeApi.for_admin(paths, timeout=1.0)
    times = []
    for i in range(runs):
        name = f"bench-manifest-{i}"
        path = paths.manifests_dir / f"{name}.yaml"
        doc: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": name}, "data": {"run": str(i)}}
        t0 = time.monotonic()
        path.write_text(yaml.safe_dump(doc))
        while api.status_code(f"/api/v1/namespaces/default/configmaps/{name}") != 200:
            if time.monotonic() - t0 > TIMEOUT:
                raise SystemExit(f"{name} did not appear within {TIMEOUT:.0f} s")
            time.sleep(POLL)
        times.append(time.monotonic() - t0)
        path.unlink()
    return times


if __name__ == "__main__":
    print(json.dumps(measure(Paths.from_env(), int(sys.argv[1]))))
