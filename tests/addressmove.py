"""What the address-change tests look at on a real node: its etcd members, its certificates'
addresses, its Node's InternalIP, and the start times of its daemons."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from microkube.pki.certs import load_cert, san_names
from tests.testnode import TestNode

# The leaves that carry the node's address (pki/node.py); the others must stay as they were.
ADDRESS_LEAVES = ("server.crt", "kubelet.crt", "etcd/server.crt", "cluster-agent.crt")

_MEMBERS = ("import json; from microkube.datastore.membership import Membership; "
            "from microkube.paths import Paths; "
            "print(json.dumps([m.to_json() for m in Membership.for_node(Paths.from_env()).members()]))")


def etcd_peer_urls(node: TestNode) -> dict[str, list[str]]:
    """Member name -> peer URLs, asked of the etcd ``node`` reaches (its own, else a voter)."""
    out = subprocess.run(node.in_netns([sys.executable, "-c", _MEMBERS]), env=node.env,
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return {m["name"]: m["peerURLs"] for m in json.loads(out)}


def cert_ips(node: TestNode, leaf: str) -> set[str]:
    """The IP addresses in the SANs of ``leaf`` (a name under certs/)."""
    return {str(ip) for ip in san_names(load_cert(node.root / "data" / "certs" / leaf))[1]}


def internal_ip(reader: TestNode, name: str) -> str | None:
    """Node ``name``'s InternalIP, as ``reader``'s API server reports it."""
    doc: dict[str, Any] = reader.kubectl_json("get", "node", name)
    return next((a["address"] for a in doc["status"].get("addresses", [])
                 if a["type"] == "InternalIP"), None)


def node_ready(reader: TestNode, name: str) -> bool:
    doc: dict[str, Any] = reader.kubectl_json("get", "node", name)
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in doc["status"]["conditions"])


def daemon_pids(node: TestNode) -> dict[str, tuple[int | None, int]]:
    """Daemon -> (pid, restarts) from the supervisor's state."""
    state = node.supervisor_state() or {}
    return {name: (d.get("pid"), d.get("restarts", 0))
            for name, d in state.get("daemons", {}).items()}
