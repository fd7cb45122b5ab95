"""The enable/disable/addons commands: help, and one clear line for bad input."""

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


@pytest.mark.parametrize(("args", "expected"), [
    (("enable", "dsn"), "Error: unknown addon 'dsn'; did you mean 'dns'?"),
    (("enable", "dns:8.8.8"), "Error: dns: --upstream: '8.8.8' is not an IP address"),
    (("disable", "ingres"), "Error: unknown addon 'ingres'; did you mean 'ingress'?"),
    (("enable",), "Error: name at least one addon to enable"),
    (("enable", "dns"), "Error: microkube is not set up on this node yet"),
    (("addons", "repo", "remove", "core"), "Error: the core repository ships with microkube"),
])
def test_one_clear_line(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    proc = _microkube(*args, root=tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(expected)
    assert proc.stdout == ""


def test_per_addon_help(tmp_path: Path) -> None:
    proc = _microkube("enable", "ingress", "--help", root=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: microkube enable ingress [OPTIONS]" in proc.stdout
    assert "--default-ssl-certificate NAMESPACE/SECRET" in proc.stdout
    general = _microkube("enable", "--help", root=tmp_path)
    assert "microkube enable ADDON --help" in " ".join(general.stdout.split())


def test_addons_list_and_repo_list(tmp_path: Path) -> None:
    proc = _microkube("addons", "list", root=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("registry") and "core" in line for line in proc.stdout.splitlines())
    proc = _microkube("addons", "repo", "list", root=tmp_path)
    assert proc.stdout.splitlines()[1].startswith("core")
