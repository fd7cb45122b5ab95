"""A control-plane node's state on disk, set up without starting anything (no root needed).

What the cluster tests need: the node's settings, argument files and PKI
(the cluster CA, the agent's serving certificate) under a root of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from microkube.config import args, node
from microkube.config.node import NodeConfig
from microkube.paths import Paths
from microkube.pki.node import ensure_node_pki


def prepare_node_root(root: Path, name: str = "cp-1", ip: str = "192.0.2.10",
                      datastore: str = "etcd") -> Paths:
    """Lay out a set-up node (on the datastore kind ``datastore``) under ``root``; its paths."""
    paths = Paths.from_env({"MICROKUBE_ROOT": str(root)})
    paths.ensure()
    args.install_defaults(paths)
    config = NodeConfig(node_name=name, node_ip=ip, datastore=datastore)
    node.save(paths.state_file, config)
    ensure_node_pki(paths.certs_dir, paths.credentials_dir, name, [ip], name,
                    config.service_cidr, config.cluster_domain, config.api_url)
    return paths


def node_env(root: Path) -> dict[str, str]:
    """This process's environment, pointed at the node under ``root`` (no snap, no other node)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "MICROKUBE_"))}
    env["MICROKUBE_ROOT"] = str(root)
    return env
