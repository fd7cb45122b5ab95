"""The manifest deployer as a thread of the cluster agent: its flags, and its restarts."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from microkube.errors import MicrokubeError, UsageError
from microkube.manifests import watch
from microkube.paths import Paths


def test_resync_interval_reads_the_argument_files_flag() -> None:
    assert watch.resync_interval([]) == watch.RESYNC
    assert watch.resync_interval(["--resync-interval=5"]) == 5.0
    for bad in (["--resync-interval=0"], ["--resync-interval=x"], ["--other=1"]):
        with pytest.raises(UsageError, match="manifests arguments"):
            watch.resync_interval(bad)


class _Deployer:
    """Fails its first ``failures`` constructions, then syncs, counting its passes."""

    made = 0
    passes = threading.Event()

    def __init__(self, paths: Paths, node_name: str, failures: int = 2) -> None:
        type(self).made += 1
        if type(self).made <= failures:
            raise MicrokubeError("no API server yet")
        self.paths = paths
        self.folder = paths.manifests_dir

    def sync(self, everything: bool = False) -> None:
        type(self).passes.set()


def test_a_failing_deployer_is_restarted_in_the_thread_and_stops_on_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    paths = Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")
    monkeypatch.setattr(watch, "Deployer", _Deployer)
    monkeypatch.setattr(watch, "RESTART_FIRST", 0.01)
    monkeypatch.setattr(watch, "GATE_WAIT", 0.01)
    background = watch.Background(paths, "node-a", lambda: 30.0)
    background.start()
    assert not _Deployer.passes.wait(0.2)  # no admin kubeconfig yet: nothing is tried
    assert _Deployer.made == 0
    paths.kubeconfig("admin").parent.mkdir(parents=True)
    paths.kubeconfig("admin").write_text("")
    assert _Deployer.passes.wait(10)
    assert _Deployer.made == 3  # two failures, each logged and restarted, then a pass
    assert caplog.text.count("the deployer stopped: no API server yet; restarting") == 2
    started = time.monotonic()
    background.stop(timeout=5)
    assert not background.thread.is_alive()
    assert time.monotonic() - started < 0.5  # woken from its wait for events, not a tick later


def test_a_broken_manifests_argument_file_is_named_at_set_up(node_env_paths: Paths) -> None:
    """The deployer's flags are read in the agent's thread; set-up still checks their file."""
    from microkube.node import setup

    paths = node_env_paths
    setup.prepare(paths)
    (paths.args_dir / "manifests").write_text("--resync-interval=30\nnot a flag\n")
    with pytest.raises(UsageError, match="manifests:2:"):
        setup.prepare(paths)


def test_the_cluster_agent_loads_no_yaml_parser_until_a_manifest_is_read() -> None:
    """The agent runs the deploy folder's deployer for the node's lifetime; PyYAML (~1 MB of
    its idle PSS) is loaded by the first manifest, not by importing the agent."""
    code = ("import sys, microkube.cluster.agent, microkube.manifests.deployer\n"
            "print('yaml' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.split() == ["False"]
