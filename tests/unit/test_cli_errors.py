"""Bad input gets one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _microkube(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "MICROKUBE_"))}
    env.update({"MICROKUBE_ROOT": str(root), "MICROKUBE_NODE_NAME": "unit",
                "MICROKUBE_NODE_IP": "192.0.2.10"})
    return subprocess.run([sys.executable, "-m", "microkube", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_unknown_command_suggests_the_nearest(tmp_path: Path) -> None:
    line = _one_line_error(_microkube("statsu", root=tmp_path))
    assert "did you mean 'status'" in line


def test_bad_flag(tmp_path: Path) -> None:
    line = _one_line_error(_microkube("status", "--bogus", root=tmp_path))
    assert "--bogus" in line


def test_bad_choice(tmp_path: Path) -> None:
    _one_line_error(_microkube("status", "--format", "xml", root=tmp_path))


def test_status_of_a_node_that_is_not_set_up(tmp_path: Path) -> None:
    proc = _microkube("status", root=tmp_path)
    assert proc.returncode == 3 and not proc.stderr
    assert proc.stdout.splitlines() == [
        "microkube is not set up on this node yet; set it up and start it with 'microkube start'"]


@pytest.mark.skipif(os.geteuid() != 0, reason="start prepares /sys/fs/cgroup-free state but needs root")
def test_corrupt_args_file_is_named_and_nothing_starts(tmp_path: Path) -> None:
    args_dir = tmp_path / "data" / "args"
    args_dir.mkdir(parents=True)
    (args_dir / "kubelet").write_text("--v=2\nthis is not a flag\n")
    line = _one_line_error(_microkube("start", root=tmp_path))
    assert f"{args_dir}/kubelet:2:" in line
    assert not (tmp_path / "common" / "run" / "supervisor.json").exists()
    assert (args_dir / "kubelet").read_text() == "--v=2\nthis is not a flag\n"


def test_version_flag(tmp_path: Path) -> None:
    proc = _microkube("--version", root=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("microkube ")


def test_refresh_certs_check_names_a_damaged_certificate_and_exits_1(tmp_path: Path) -> None:
    from tests.clusternode import prepare_node_root

    paths = prepare_node_root(tmp_path)
    assert _microkube("refresh-certs", "--check", root=tmp_path).returncode == 0
    paths.pki.server.cert.write_text("")  # a disk that filled up while it was renewed
    proc = _microkube("refresh-certs", "--check", root=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("server.crt "))
    assert "cannot be read" in line and "refresh-certs --cert server.crt" in line


def test_inspect_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    line = _one_line_error(_microkube("inspect", "-o", str(tmp_path / "no" / "r.tgz"),
                                      root=tmp_path))
    assert "cannot write the report to" in line


def test_leave_on_a_stopped_control_plane_says_it_is_stopped(tmp_path: Path) -> None:
    from tests.clusternode import prepare_node_root

    prepare_node_root(tmp_path)
    proc = _microkube("leave", root=tmp_path)
    line = _one_line_error(proc)
    assert proc.returncode == 3 and "microkube is not running" in line and "start it" in line
