"""Which snap daemon runner does a daemon's after_ready work (microkube.node.snap_daemon)."""

from __future__ import annotations

from pathlib import Path

import pytest

from microkube.config.node import NodeConfig
from microkube.node.snap_daemon import runs_own_after_ready
from microkube.paths import Paths
from microkube.services.base import NodeContext


@pytest.mark.parametrize("datastore", ["etcd", "sqlite"])
def test_only_kubelite_runs_its_own_after_ready_on_a_control_plane(
        tmp_path: Path, datastore: str) -> None:
    # Nothing waits on kubelite in the snap any more (flannel and netpol are its parts, the
    # deployer a thread of the agent), so its bootstrap RBAC is its own runner's job; the
    # datastore's and containerd's work is done by kubelite's runner, which waits on them.
    node = NodeConfig("cp", "192.0.2.10", datastore=datastore)
    ctx = NodeContext(Paths.from_env({"MICROKUBE_ROOT": str(tmp_path)}), node)
    names = ["containerd", "kubelite", "cluster-agent",
             "etcd" if datastore == "etcd" else "kine"]
    assert {n for n in names if runs_own_after_ready(ctx, n)} == {"kubelite"}
