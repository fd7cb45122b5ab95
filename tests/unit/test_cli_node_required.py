"""Every command that needs a node says so in one line when there is none.

Before the first 'start' the passthroughs (kubectl, helm, ctr) would print the
tool's own 'connection refused'; each verb would fail in its own way. Each is
run through the CLI with a fresh MICROKUBE_ROOT.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from microkube.config import node
from microkube.paths import Paths

NOT_SET_UP = ("Error: microkube is not set up on this node yet; "
              "set it up and start it with 'microkube start'")
NEEDS_A_NODE = [
    ("kubectl", "get", "nodes"),
    ("helm", "list"),
    ("ctr", "images", "ls"),
    ("enable", "dns"),
    ("disable", "dns"),
    ("config",),
    ("images", "import", "/etc/hostname"),
    ("images", "export-local", "out"),
    ("refresh-certs",),
    ("refresh-certs", "--check"),
    ("reset", "--yes"),
    ("add-node",),
    ("leave",),
    ("remove-node", "other"),
    ("dbctl", "backup"),
    ("secrets-encryption", "status"),
]


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SNAP", "MICROKUBE_")) and k != "KUBECONFIG"}
    env.update({"MICROKUBE_ROOT": str(root), "MICROKUBE_NODE_NAME": "unit",
                "MICROKUBE_NODE_IP": "192.0.2.10"})
    return env


def _microkube(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "microkube", *args], env=_env(root),
                          cwd=root.parent, capture_output=True, text=True, timeout=60)


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and not proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("args", NEEDS_A_NODE, ids=" ".join)
def test_a_node_never_set_up_is_named_in_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    root = tmp_path / "root"
    assert _one_line(_microkube(root, *args)) == NOT_SET_UP
    assert not (root / "data").exists(), "a refused command must not set the node up"


@pytest.fixture
def stopped_root(tmp_path: Path) -> Path:
    """A node set up as 'start' leaves it, then stopped; nothing listens on its API port."""
    root = tmp_path / "root"
    code = "from microkube.node import setup; from microkube.paths import Paths; " \
           "setup.prepare(Paths.from_env())"
    subprocess.run([sys.executable, "-c", code], env=_env(root), check=True, timeout=60)
    paths = Paths.from_env(_env(root))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node.save(paths.state_file, replace(node.load(paths.state_file), api_port=port))
    return root


@pytest.mark.parametrize("args", [a for a in NEEDS_A_NODE if a[0] in
                                  ("kubectl", "helm", "ctr", "enable", "disable", "images")],
                         ids=" ".join)
def test_a_stopped_node_is_named_in_one_line(stopped_root: Path, args: tuple[str, ...]) -> None:
    line = _one_line(_microkube(stopped_root, *args))
    assert "microkube is not running" in line, line
    assert "'microkube start'" in line or "'microkube status'" in line, line
    assert "refused" not in line and "localhost:8080" not in line


def test_kubectl_with_the_users_own_kubeconfig_is_not_stopped(tmp_path: Path) -> None:
    """KUBECONFIG names another cluster: microkube's node does not matter (the tool runs)."""
    env = {**_env(tmp_path / "root"), "KUBECONFIG": str(tmp_path / "other.config")}
    proc = subprocess.run([sys.executable, "-m", "microkube", "kubectl", "version", "--client"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert "not set up" not in proc.stderr


def test_the_snaps_renewal_timer_on_a_node_never_set_up_renews_nothing(tmp_path: Path) -> None:
    # snapd runs `refresh-certs --due` on its timer from the install on: no error before
    # the first start, and nothing set up by it.
    root = tmp_path / "root"
    proc = _microkube(root, "refresh-certs", "--due")
    assert proc.returncode == 0 and proc.stdout.strip() == "not set up: nothing to renew"
    assert not (root / "data").exists()
    both = _microkube(root, "refresh-certs", "--due", "--cert", "server.crt")
    assert both.returncode == 2 and "--due renews what is due" in both.stderr


def test_due_renewal_on_a_stopped_node_renews_nothing_fresh(stopped_root: Path) -> None:
    # The fixture moved the API port: the kubeconfigs that name it are re-issued once.
    first = _microkube(stopped_root, "refresh-certs", "--due")
    assert first.returncode == 0 and "proxy.config" in first.stdout, first.stderr
    again = _microkube(stopped_root, "refresh-certs", "--due")
    assert again.returncode == 0, again.stderr
    assert "renewed: nothing" in again.stdout and "restarted" not in again.stdout


def test_the_lazy_verb_map_names_exactly_what_the_modules_register() -> None:
    import click

    from microkube.cli import commands

    group = click.Group()
    commands.register(group)
    assert commands.VERBS.keys() == group.commands.keys()
    for name, module in commands.VERBS.items():
        assert group.commands[name].callback.__module__ == module, name
