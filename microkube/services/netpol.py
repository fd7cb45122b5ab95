"""netpol: NetworkPolicy enforcement on this node (kube-router's policy controller).

The controller (components/netpol, from the pinned kube-router module) keeps
iptables chains and ipsets for the pods that run on the node, so it runs on
every node, workers included. Its rules stay in place while it restarts, so a
policy never lapses during an upgrade; with enforcement turned off
(``NodeConfig.network_policy``) the daemon does not run and ``remove_rules``
takes its chains and sets away.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from microkube.errors import MicrokubeError
from microkube.probes import http_ok
from microkube.services.base import Daemon, NodeContext
from microkube.snap.leftovers import IPSET_PREFIXES, find_ipset, remove_chains, remove_ipsets

NAME = "netpol"
# The filter-table chains kube-router's policy controller makes.
CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")


class NetworkPolicy(Daemon):
    """The policy controller; ready once its first full sync has written the node's rules."""

    name = NAME
    binary = "netpol"
    # It reads its own Node (for the node's address) when it starts.
    after: ClassVar[tuple[str, ...]] = ("kubelite",)

    def can_start(self, ctx: NodeContext) -> bool:
        # It exits if its Node is not registered yet; wait rather than crash-loop.
        from microkube.kube.api import KubeApi

        node = KubeApi.for_user(ctx.paths, NAME, timeout=1.0).get(
            f"/api/v1/nodes/{ctx.node.node_name}")
        return isinstance(node, dict) and bool(node.get("status", {}).get("addresses"))

    def prepare(self, ctx: NodeContext) -> None:
        """Raises MicrokubeError when the ipset tool, which the controller runs, is missing."""
        if find_ipset(ctx.paths.bin_dir) is None:
            raise MicrokubeError(
                "netpol needs the ipset tool (Debian/Ubuntu: apt-get install ipset); or turn "
                "NetworkPolicy enforcement off (network_policy: false in the node's settings)")

    def ready(self, ctx: NodeContext) -> bool:
        return http_ok(f"http://127.0.0.1:{ctx.paths.ports.netpol_ready}/healthz")


def remove_rules(bin_dir: Path) -> list[str]:
    """Take kube-router's policy chains, then its sets, off the host (enforcement off);
    ``bin_dir`` is the tree's bin/, whose ipset (the snap's) is run before the host's.

    Returns what was removed ("iptables filter", "ipset KUBE-SRC-..."), for a log line.
    Every other rule and set of the host stays as it was.
    """
    done = [f"iptables {t}" for t in remove_chains(prefixes=CHAIN_PREFIXES)]
    return done + [f"ipset {name}" for name in remove_ipsets(bin_dir, IPSET_PREFIXES)]
