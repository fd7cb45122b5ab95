"""Two real nodes brought up from launch files alone, on a test LAN (tests/multinode.py).

The first forms the cluster from its file, which enables hostpath-storage once it is
Ready. The second's file carries the join string the first's ``add-node`` printed and
``joinAsWorker: true``: its first ``start`` joins as a worker (with the file's node
name) instead of forming a cluster of its own. Before that, a malformed join string is
refused with one line naming the key and leaves nothing on disk; after it, a second
``start`` does not join again.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from microkube.paths import Paths
from tests.e2e.addon_support import require_node_and_images
from tests.multinode import cluster

WORKER_NAME = "mk-lj-edge"  # the worker's file names it; its environment says otherwise


def _ready(conditions: list[dict[str, str]]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_two_nodes_from_launch_files_one_joining_the_other(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    require_node_and_images("local-path-provisioner")
    began = time.monotonic()
    base = Path(tmp_path_factory.mktemp("ljoin"))
    with cluster(base) as lan:
        cp, worker = lan.add("mk-lj1"), lan.add("mk-lj2")
        first = base / "first.yaml"
        first.write_text(yaml.safe_dump({"version": "0.1.0", "nodeName": "mk-lj1",
                                         "addons": [{"name": "hostpath-storage"}]}))
        out = cp.run("start", "--config", str(first), "--timeout", "240", timeout=400)
        assert "launch configuration: hostpath-storage done" in out.stdout, out.stdout
        cp_ready = time.monotonic() - began

        join_string = lan.join_string(cp)
        bad = base / "bad.yaml"
        bad.write_text(yaml.safe_dump({"version": "0.1.0", "joinAsWorker": True,
                                       "join": join_string.rpartition("/")[0]}))
        refused = worker.run("start", "--config", str(bad), check=False)
        assert refused.returncode == 2, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert f"{bad}: join: has 2 parts separated by '/', not 3" in refused.stderr
        assert join_string.split("/")[1] not in refused.stderr  # the token is not repeated
        assert not Paths.from_env(worker.env).data.exists()

        second = base / "second.yaml"
        second.write_text(yaml.safe_dump({"version": "0.1.0", "nodeName": WORKER_NAME,
                                          "join": join_string, "joinAsWorker": True}))
        t = time.monotonic()
        joined = worker.run("start", "--config", str(second), timeout=300)
        join_seconds = time.monotonic() - t
        assert f"{WORKER_NAME} joined the cluster at {cp.ip}:" in joined.stdout, joined.stdout
        assert "as a worker" in joined.stdout
        for line in ("joining the cluster at", "the cluster CA matches the join string's",
                     f"node {WORKER_NAME} is Ready"):
            assert line in joined.stderr, joined.stderr

        nodes = {n["metadata"]["name"]: n for n in cp.kubectl_json("get", "nodes")["items"]}
        assert set(nodes) == {"mk-lj1", WORKER_NAME}
        assert all(_ready(n["status"]["conditions"]) for n in nodes.values())
        assert "microkube-hostpath" in cp.kubectl("get", "storageclass", "-o", "name")
        st = yaml.safe_load(worker.run("status", "--format", "yaml").stdout)
        assert st["node"] == WORKER_NAME

        # Only the first start joins: the file is refused now, and a plain start does nothing.
        again = worker.run("start", "--config", str(second), check=False)
        assert again.returncode == 2 and "set up already" in again.stderr, again.stderr
        plain = worker.run("start")
        assert "already running" in plain.stdout and "joining" not in plain.stderr
        assert len(cp.kubectl_json("get", "nodes")["items"]) == 2
    print(f"\nlaunch-join module: control plane Ready with its addon {cp_ready:.0f} s, "
          f"worker joined {join_seconds:.0f} s, whole {time.monotonic() - began:.0f} s")
