"""The node runtime is chosen once from the paths, and both runtimes answer the same questions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from microkube.errors import NotRunningError
from microkube.node.runtime import runtime_for
from microkube.node.runtime.base import NOT_RUNNING, wait_until
from microkube.node.runtime.snapd import SnapdRuntime
from microkube.node.runtime.supervisor import SupervisorRuntime
from microkube.paths import Paths
from microkube.services.registry import control_plane_daemons


def _paths(root: Path, in_snap: bool) -> Paths:
    return Paths(root / "snap", root / "data", root / "common", in_snap=in_snap)


def test_the_backend_is_chosen_from_the_paths(tmp_path: Path) -> None:
    assert type(runtime_for(_paths(tmp_path, in_snap=False))) is SupervisorRuntime
    assert type(runtime_for(_paths(tmp_path, in_snap=True))) is SnapdRuntime


def test_a_node_without_a_supervisor_is_not_running(tmp_path: Path) -> None:
    runtime = runtime_for(_paths(tmp_path, in_snap=False))
    assert runtime.daemon_states() is None
    assert not runtime.is_running()
    with pytest.raises(NotRunningError, match="microkube start"):
        runtime.require_running()
    runtime.restart_daemon("kubelet")  # not running: nothing to restart, and no error
    assert runtime.certificate_summary() == ("", None)


def test_a_dead_supervisors_state_file_does_not_count(tmp_path: Path) -> None:
    paths = _paths(tmp_path, in_snap=False)
    paths.run_dir.mkdir(parents=True)
    # A pid that cannot be this file's supervisor: pid 1 with another start time.
    paths.supervisor_state.write_text('{"pid": 1, "create_time": 1.0, "started_at": 1.0, '
                                      '"daemons": {"etcd": {"state": "ready", "pid": 1}}}')
    assert runtime_for(paths).daemon_states() is None


def _fake_snapctl(bin_dir: Path, services_output: str) -> None:
    """A snapctl that answers ``services`` with a fixed table and fails on anything else."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "snapctl"
    (bin_dir / "services.txt").write_text(services_output)
    script.write_text('#!/bin/sh\n[ "$1" = services ] || { echo "unexpected: $*" >&2; exit 1; }\n'
                      f'cat "{bin_dir}/services.txt"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_snapd_runtime_reads_snapds_service_table(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    names = [d.name for d in control_plane_daemons()]
    header = "Service  Startup  Current  Notes\n"
    inactive = "".join(f"microkube.daemon-{n}  disabled  inactive  -\n" for n in names)
    _fake_snapctl(tmp_path / "bin", header + inactive)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SNAP_INSTANCE_NAME", "microkube")
    runtime = runtime_for(_paths(tmp_path, in_snap=True))
    assert runtime.daemon_states() is None
    with pytest.raises(NotRunningError) as err:
        runtime.require_running()
    assert str(err.value) == NOT_RUNNING


def test_wait_until_names_what_it_waited_for() -> None:
    wait_until(lambda: True, timeout=0.1, what="never raised")
    with pytest.raises(Exception, match="kubelet did not come back within 0 s"):
        wait_until(lambda: False, timeout=0.05, what="kubelet did not come back", step=0.01)
