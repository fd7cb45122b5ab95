from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from microkube.config import node
from microkube.errors import UsageError
from microkube.paths import Paths


def test_detect_uses_environment_overrides() -> None:
    cfg = node.detect({"MICROKUBE_NODE_NAME": "edge-1", "MICROKUBE_NODE_IP": "10.9.0.2",
                       "MICROKUBE_SERVICE_CIDR": "10.96.0.0/16"})
    assert (cfg.node_name, cfg.node_ip) == ("edge-1", "10.9.0.2")
    assert cfg.service_ip == "10.96.0.1"
    assert cfg.dns_ip == "10.96.0.10"


def test_round_trip(tmp_path: Path) -> None:
    cfg = node.NodeConfig(node_name="n1", node_ip="192.0.2.9", registry_mirror="http://127.0.0.1:1")
    node.save(tmp_path / "node.yaml", cfg)
    assert node.load(tmp_path / "node.yaml") == cfg


@pytest.mark.parametrize(("text", "message"), [
    ("node_name: [1\n", "not valid YAML"),
    ("- a\n", "expected a mapping"),
    ("node_name: n\nnode_ip: 1.2.3.4\ncolour: red\n", "unknown setting 'colour'"),
    ("node_name: n\nnode_ip: not-an-ip\n", "node_ip: 'not-an-ip' is not an IP address"),
    ("node_name: Bad_Name\nnode_ip: 1.2.3.4\n", "not a valid DNS subdomain"),
    ("node_name: n\n", "node_ip"),
    # A wrong value names its key (not 'expected string or bytes-like object').
    ("node_name: 5\nnode_ip: 1.2.3.4\n", "node_name: expected text, got 5"),
    ("node_name: n\nnode_ip: 1.2.3.4\napi_port: x\n", "api_port: expected a port number"),
    ("node_name: n\nnode_ip: 1.2.3.4\nregistry_mirror: [a]\n", "registry_mirror: expected text"),
    ("node_name: n\nnode_ip: 1.2.3.4\ncluster_domain: bad domain\n",
     "cluster_domain: 'bad domain' is not a valid DNS name"),
    ("node_name: n\nnode_ip: 1.2.3.4\nservice_cidr: 10.0.0.0/29\n", "service_cidr: .* too small"),
])
def test_corrupt_node_file_gives_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as err:
        node.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_node_file_of_binary_bytes_or_a_folder_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(UsageError, match="not valid YAML"):
        node.load(path)
    path.unlink()
    path.mkdir()
    with pytest.raises(UsageError, match="cannot be read"):
        node.load(path)


@pytest.mark.parametrize(("variable", "value"), [
    ("MICROKUBE_POD_CIDR", "10.1.0.0/99"), ("MICROKUBE_SERVICE_CIDR", "10.0.0.0/30"),
    ("MICROKUBE_CLUSTER_DOMAIN", "a..b"), ("MICROKUBE_NODE_IP", "1.2.3"),
    ("MICROKUBE_CGROUP_ROOT", "relative/pods"), ("MICROKUBE_CGROUP_ROOT", "/mk/../escape"),
    ("MICROKUBE_CGROUP_ROOT", "/mk/pods/"),
])
def test_a_bad_value_from_the_environment_names_its_variable(variable: str, value: str) -> None:
    env = {"MICROKUBE_NODE_NAME": "n", "MICROKUBE_NODE_IP": "192.0.2.9", variable: value}
    with pytest.raises(UsageError, match=f"^{variable}: .*{re.escape(value)}"):
        node.detect(env)


def test_default_route_ip_reads_the_route_table(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text("Iface\tDestination\tGateway\nnope0\t0000FEA9\t00000000\n")
    assert node.default_route_ip(table) is None


def _cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "MICROKUBE_"))}
    return subprocess.run([sys.executable, "-m", "microkube", *args],
                          env={**clean, "MICROKUBE_ROOT": str(root), **env},
                          capture_output=True, text=True, timeout=60)


def test_invalid_name_from_the_environment_says_how_to_set_one(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = _cli(root, {"MICROKUBE_NODE_NAME": "Test_Node_A", "MICROKUBE_NODE_IP": "192.0.2.10"},
                "start")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "Error: node name 'Test_Node_A' is not a valid DNS subdomain (lower-case letters, digits, "
        "'-' and '.', starting and ending alphanumeric); "
        "set a valid one with MICROKUBE_NODE_NAME=test-node-a"]
    assert not root.exists(), "a refused name must leave nothing on disk"


def test_invalid_host_name_in_the_snap_says_snap_set(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from microkube.node import setup

    monkeypatch.setattr(node.socket, "gethostname", lambda: "Build_Box")
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common", in_snap=True)
    with pytest.raises(UsageError) as err:
        setup.prepare(paths)
    assert str(err.value) == (
        "node name 'build_box' is not a valid DNS subdomain (lower-case letters, digits, '-' and "
        "'.', starting and ending alphanumeric) (this host's name); "
        "set a valid one with 'snap set microkube node.name=build-box'")
    assert not paths.data.exists()


def test_invalid_name_as_a_snap_option_says_snap_set() -> None:
    from microkube.snap import options

    current = node.NodeConfig(node_name="n1", node_ip="10.0.0.5")
    with pytest.raises(UsageError, match=r"node.name: node name 'Test_Node_A' is not a valid .*; "
                                         r"set a valid one with 'snap set microkube "
                                         r"node.name=test-node-a'$"):
        options.changed(current, {"node_name": "Test_Node_A"}, started=False)


@pytest.mark.parametrize(("name", "valid"), [
    ("Test_Node_A", "test-node-a"), ("-edge_01.", "edge-01"), ("___", "node-1"),
    ("a" * 300, "a" * 253),
])
def test_suggested_names_are_valid(name: str, valid: str) -> None:
    assert node.suggested_name(name) == valid
    node.NodeConfig(node_name=valid, node_ip="10.0.0.5")
