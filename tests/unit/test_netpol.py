"""NetworkPolicy enforcement's setting: where it is read, which parts of kubelite it runs, what it
removes when turned off, and how status shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from microkube.config import launch, node
from microkube.config.node import NodeConfig
from microkube.errors import UsageError
from microkube.node.launch import first_start
from microkube.node.report import render_status
from microkube.node.status import NodeState, NodeStatus
from microkube.paths import Paths
from microkube.services import netpol
from microkube.services.base import NodeContext
from microkube.services.kubernetes import Kubelite
from microkube.services.registry import daemon_running, daemons_for
from microkube.snap import leftovers


def _parts(cfg: NodeConfig, tmp_path: Path) -> list[str]:
    """The parts kubelite runs on a node with the settings ``cfg``."""
    kubelite = next(d for d in daemons_for(cfg) if d.name == "kubelite")
    assert isinstance(kubelite, Kubelite)
    return list(kubelite.parts_for(NodeContext(Paths(tmp_path, tmp_path, tmp_path), cfg)))


@pytest.mark.parametrize("role, api_server", [("control-plane", None),
                                              ("worker", "https://10.0.0.1:16443")])
def test_every_node_enforces_by_default_and_none_when_turned_off(
        role: str, api_server: str | None, tmp_path: Path) -> None:
    on = NodeConfig(node_name="n1", node_ip="10.0.0.2", role=role, api_server=api_server)
    assert on.network_policy is True
    # A part of kubelite on every node, with the pod network (flanneld).
    assert {"netpol", "flanneld"} <= set(_parts(on, tmp_path))
    off = NodeConfig(node_name="n1", node_ip="10.0.0.2", role=role, api_server=api_server,
                     network_policy=False)
    assert _parts(off, tmp_path) == [n for n in _parts(on, tmp_path) if n != "netpol"]
    # Restarting "netpol" restarts the process that runs it.
    assert daemon_running("netpol") == "kubelite"


def test_a_launch_file_turns_enforcement_off(tmp_path: Path) -> None:
    paths = Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")
    f = tmp_path / "launch.yaml"
    f.write_text("version: 0.1.0\nnodeName: edge-1\nnodeAddress: 10.9.8.7\nnetworkPolicy: false\n")
    assert first_start(paths, f) is not None
    assert node.load(paths.state_file).network_policy is False


def test_a_launch_file_with_a_non_boolean_is_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        launch.parse("version: 0.1.0\nnetworkPolicy: maybe\n", tmp_path / "launch.yaml")
    assert "networkPolicy" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("value, expected", [("false", False), ("off", False), ("0", False),
                                             ("true", True), ("Yes", True)])
def test_the_environment_turns_enforcement_on_or_off(value: str, expected: bool) -> None:
    env = {"MICROKUBE_NODE_NAME": "n1", "MICROKUBE_NODE_IP": "10.0.0.2",
           "MICROKUBE_NETWORK_POLICY": value}
    assert node.detect(env=env).network_policy is expected


def test_a_bad_environment_value_is_one_clear_line() -> None:
    env = {"MICROKUBE_NODE_NAME": "n1", "MICROKUBE_NODE_IP": "10.0.0.2",
           "MICROKUBE_NETWORK_POLICY": "sometimes"}
    with pytest.raises(UsageError, match="MICROKUBE_NETWORK_POLICY: 'sometimes' is not true"):
        node.detect(env=env)


def test_the_node_file_refuses_a_non_boolean(tmp_path: Path) -> None:
    f = tmp_path / "node.yaml"
    f.write_text("node_name: n1\nnode_ip: 10.0.0.2\nnetwork_policy: maybe\n")
    with pytest.raises(UsageError, match="network_policy: 'maybe' is not true or false"):
        node.load(f)


DUMP = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-ROUTER-FORWARD - [0:0]
:KUBE-POD-FW-ABCDEF - [0:0]
:KUBE-NWPLCY-DEFAULT - [0:0]
-A FORWARD -m comment --comment "kube-router netpol" -j KUBE-ROUTER-FORWARD
-A FORWARD -j KUBE-FORWARD
-A KUBE-ROUTER-FORWARD -d 10.1.0.5 -j KUBE-POD-FW-ABCDEF
-A KUBE-POD-FW-ABCDEF -j KUBE-NWPLCY-DEFAULT
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
"""


def test_turning_enforcement_off_drops_only_the_policy_controllers_chains() -> None:
    cleaned = leftovers.without_chains(DUMP, netpol.CHAIN_PREFIXES)
    assert cleaned is not None
    assert "KUBE-ROUTER" not in cleaned and "KUBE-POD-FW" not in cleaned
    assert "KUBE-NWPLCY" not in cleaned
    # kube-proxy's chain and its rules stay.
    assert ":KUBE-FORWARD - [0:0]" in cleaned and "-A FORWARD -j KUBE-FORWARD" in cleaned
    assert "--ctstate INVALID -j DROP" in cleaned


def test_only_the_controllers_ipsets_are_destroyed() -> None:
    listing = "KUBE-SRC-3G4X\nKUBE-DST-ZZZ\ncali40all-hosts\nKUBE-ROUTER-x\nmy-own-set\n"
    assert leftovers.ipset_names(listing) == ["KUBE-SRC-3G4X", "KUBE-DST-ZZZ"]


@pytest.mark.parametrize("enforced, word", [(True, "yes"), (False, "no")])
@pytest.mark.parametrize("role", ["control-plane", "worker"])
def test_status_shows_whether_network_policy_is_enforced(enforced: bool, word: str,
                                                         role: str) -> None:
    st = NodeStatus(NodeState.READY, node_name="n1", role=role, network_policy=enforced,
                    control_plane="https://10.0.0.1:16443" if role == "worker" else "")
    assert f"network policy enforced: {word}" in render_status(st, "pretty").splitlines()
    assert f"network-policy:\n  enforced: {str(enforced).lower()}" in render_status(st, "yaml")
