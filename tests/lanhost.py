"""A host on a test LAN (tests/multinode.py's bridge) that is not a node: a client.

It is a network namespace of its own with one address on the bridge and no route
beyond the bridge's subnet, so whatever it reaches, it reaches over that link.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests import netns


class LanHost:
    """Namespace ``name`` at ``ip``/24 on the bridge in ``bridge_ns`` (port ``port``)."""

    def __init__(self, name: str, ip: str, bridge_ns: str, port: str) -> None:
        self.netns = name
        self.ip = ip
        netns.create_on_bridge(name, ip, bridge_ns, port[:15])

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """argv run in the host's namespace; its result whatever the exit status."""
        return subprocess.run(netns.in_netns(self.netns, list(argv)), capture_output=True,
                              text=True, timeout=timeout, check=False)

    def get(self, url: str, timeout: float = 3) -> str:
        """The body of a GET from this host (stripped), or 'error: ...' when it fails."""
        code = f"""
import urllib.request
try:
    with urllib.request.urlopen({url!r}, timeout={timeout}) as r:
        print(r.read().decode().strip())
except Exception as e:
    print("error:", e)
"""
        return self.run(sys.executable, "-c", code, timeout=timeout + 20).stdout.strip()

    def neighbour(self, ip: str) -> str:
        """The link-layer address this host learned for ``ip`` ('' if none)."""
        entries = json.loads(self.run("ip", "-j", "neigh", "show", ip).stdout or "[]")
        return str(entries[0].get("lladdr", "")) if entries else ""

    def forget_neighbours(self) -> None:
        """Flush the ARP/NDP cache, so the next packet asks the link again."""
        self.run("ip", "neigh", "flush", "all")

    def delete(self) -> None:
        netns.delete(self.netns)
