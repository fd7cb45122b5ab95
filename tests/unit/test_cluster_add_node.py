"""``microkube add-node``: the join commands in each format, and one line for bad input."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from microkube.cluster.invitation import node_addresses
from microkube.cluster.joinstring import format_address, parse
from microkube.cluster.tokens import TokenStore
from microkube.paths import Paths
from microkube.pki.hostinfo import host_ips
from tests.clusternode import node_env, prepare_node_root

NODE_IP = "192.0.2.10"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    return prepare_node_root(tmp_path_factory.mktemp("add-node") / "root", ip=NODE_IP)


def add_node(paths: Paths, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "microkube", "add-node", *flags],
                          env=node_env(paths.data.parent), capture_output=True, text=True,
                          timeout=60)


def ca_fingerprint(paths: Paths) -> str:
    cert = x509.load_pem_x509_certificate((paths.certs_dir / "ca.crt").read_bytes())
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def expected_addresses() -> list[str]:
    return [format_address(ip, 25000) for ip in node_addresses(NODE_IP, host_ips())]


def test_short_prints_both_forms_for_every_address(node: Paths) -> None:
    proc = add_node(node, "--format", "short")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    addresses = expected_addresses()
    assert addresses[0] == f"{NODE_IP}:25000"
    assert len(lines) == 2 * len(addresses)
    control, worker = lines[:len(addresses)], lines[len(addresses):]
    for address, cp_line, w_line in zip(addresses, control, worker, strict=True):
        assert cp_line.startswith(f"microkube join {address}/")
        assert w_line == cp_line + " --worker"
    join = parse(control[0].split()[2])
    assert join.fingerprint == ca_fingerprint(node) and len(join.fingerprint) == 64
    assert len(join.token) == 32
    assert len({line.split("/")[1] for line in lines}) == 1  # one token in every line
    # The token was stored (as a hash): the agent will accept it.
    assert TokenStore(node.cluster_tokens_file).check(join.token).consumed_by is None
    assert join.token not in node.cluster_tokens_file.read_text()


def test_pretty_follows_microk8s_and_says_when_the_token_expires(node: Paths) -> None:
    proc = add_node(node, "--token-ttl", "7200")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    lines = out.splitlines()
    assert lines[0] == "From the node you wish to join to this cluster, run the following:"
    assert lines[1].startswith(f"microkube join {NODE_IP}:25000/")
    assert lines[3] == ("Use the '--worker' flag to join a node as a worker not running the "
                        "control plane, eg:")
    assert lines[4] == lines[1] + " --worker"
    for address in expected_addresses()[1:]:
        assert f"microkube join {address}/" in out
        assert "use one of these addresses instead:" in out
    assert "The token joins one node and expires in 2 hours" in out
    assert ca_fingerprint(node) in lines[1]


def test_json_has_what_a_script_needs(node: Paths) -> None:
    before = time.time()
    proc = add_node(node, "--format", "json", "--token-ttl", "90")
    doc = json.loads(proc.stdout)
    assert doc["fingerprint"] == ca_fingerprint(node)
    assert doc["port"] == 25000 and doc["ttl_seconds"] == 90
    expires = dt.datetime.fromisoformat(doc["expires_at"].replace("Z", "+00:00")).timestamp()
    assert before + 89 <= expires <= time.time() + 91
    addresses = expected_addresses()
    assert doc["join_strings"] == [f"{a}/{doc['token']}/{doc['fingerprint']}" for a in addresses]
    assert [c["control_plane"] for c in doc["commands"]] == [
        f"microkube join {s}" for s in doc["join_strings"]]
    assert [c["worker"] for c in doc["commands"]] == [
        f"microkube join {s} --worker" for s in doc["join_strings"]]


def test_a_given_token_is_used(node: Paths) -> None:
    token = "my-own-token-of-thirty-two-chars"
    proc = add_node(node, "--token", token, "--format", "short")
    assert proc.returncode == 0, proc.stderr
    assert f"/{token}/" in proc.stdout.splitlines()[0]
    assert _one_line_error(add_node(node, "--token", token)).endswith(
        "that token already exists; choose another one")


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("flags, message", [
    (["--token", "too-short"], "a token must be 32 to 128 characters long, not 9"),
    (["--token", "x" * 31 + "/"], "a token may hold only letters, digits, '-' and '_'"),
    (["--token-ttl", "0"], "--token-ttl must be between 1 and 2592000 seconds, not 0"),
    (["--token-ttl", "soon"], "'soon' is not a valid integer"),
    (["--format", "yaml"], "'yaml' is not one of"),
])
def test_bad_input_is_one_line_and_stores_nothing(node: Paths, flags: list[str],
                                                  message: str) -> None:
    before = node.cluster_tokens_file.read_bytes() if node.cluster_tokens_file.exists() else None
    assert message in _one_line_error(add_node(node, *flags))
    after = node.cluster_tokens_file.read_bytes() if node.cluster_tokens_file.exists() else None
    assert after == before


def test_a_node_that_was_never_set_up_is_told_so(tmp_path: Path) -> None:
    paths = Paths.from_env({"MICROKUBE_ROOT": str(tmp_path)})
    assert "microkube is not set up on this node yet" in _one_line_error(add_node(paths))
    assert not paths.cluster_tokens_file.exists()


def test_a_node_without_its_ca_is_told_so(tmp_path: Path) -> None:
    paths = prepare_node_root(tmp_path / "root")
    (paths.certs_dir / "ca.crt").unlink()
    assert "start the node once" in _one_line_error(add_node(paths))
    assert not paths.cluster_tokens_file.exists()


def test_the_port_comes_from_the_agents_argument_file(tmp_path: Path) -> None:
    from microkube.config import args

    paths = prepare_node_root(tmp_path / "root")
    args.set_flag(paths, "cluster-agent", "port", "26000")
    proc = add_node(paths, "--format", "short")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"microkube join {NODE_IP}:26000/")


@pytest.mark.parametrize("port", ["99999", "-1", "0", "x"])
def test_an_agent_port_out_of_range_is_refused_and_stores_no_token(tmp_path: Path,
                                                                   port: str) -> None:
    paths = prepare_node_root(tmp_path / "root", ip=NODE_IP)
    paths.args_file("cluster-agent").write_text(f"--port={port}\n")
    line = _one_line_error(add_node(paths))
    assert line.endswith("args/cluster-agent: --port is not a port number (1-65535)"), line
    assert not paths.cluster_tokens_file.exists()
