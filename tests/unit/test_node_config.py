from __future__ import annotations

from pathlib import Path

import pytest

from microkube.config import node
from microkube.errors import UsageError


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
])
def test_corrupt_node_file_gives_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as err:
        node.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_default_route_ip_reads_the_route_table(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text("Iface\tDestination\tGateway\nnope0\t0000FEA9\t00000000\n")
    assert node.default_route_ip(table) is None
