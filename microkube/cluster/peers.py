"""Where a joined node reaches its cluster's agents: recorded when it joins, read when it leaves.

The file (``var/cluster-agents.json``) lists ``ip:port`` addresses, the agent
the node joined through first.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from microkube.cluster.joinstring import format_address
from microkube.config.node import NodeConfig
from microkube.fsutil import write_atomic
from microkube.paths import Paths, Ports


def save_agents(paths: Paths, addresses: list[str]) -> None:
    """Record the agents' ``ip:port`` addresses, the first one first."""
    write_atomic(paths.cluster_agents_file, json.dumps({"agents": addresses}) + "\n")


def load_agents(paths: Paths, config: NodeConfig) -> list[str]:
    """The recorded agent addresses; if none were recorded, the agent beside a worker's API
    server on the default port. Empty when neither is known."""
    try:
        doc = json.loads(paths.cluster_agents_file.read_text())
        found = [str(a) for a in doc["agents"] if isinstance(a, str)]
        if found:
            return found
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if config.api_server:
        import ipaddress

        host = urlsplit(config.api_server).hostname
        if host:
            return [format_address(ipaddress.ip_address(host), Ports().cluster_agent)]
    return []
