"""netpol: NetworkPolicy enforcement on this node (kube-router's policy controller).

The controller (components/kube/netpol.go, a part of kubelite) keeps iptables
chains and ipsets for the pods that run on the node, so it runs on every node,
workers included. Its rules stay in place while kubelite restarts, so a policy
never lapses during an upgrade; with enforcement turned off
(``NodeConfig.network_policy``) kubelite does not run the part and
``remove_rules`` takes its chains and sets away.
"""

from __future__ import annotations

from pathlib import Path

from microkube.errors import MicrokubeError

NAME = "netpol"
# The filter-table chains kube-router's policy controller makes.
CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")


def require_ipset(bin_dir: Path) -> None:
    """Return if the ipset tool the controller runs is there (``bin_dir``: the tree's bin/,
    whose ipset is found before the host's); raises MicrokubeError saying how to get it."""
    # Here, not at the top: ``microkube status`` imports this module and never needs
    # leftovers' subprocess and shutil.
    from microkube.snap.leftovers import find_ipset

    if find_ipset(bin_dir) is None:
        raise MicrokubeError(
            "netpol needs the ipset tool (Debian/Ubuntu: apt-get install ipset); or turn "
            "NetworkPolicy enforcement off (network_policy: false in the node's settings)")


def remove_rules(bin_dir: Path) -> list[str]:
    """Take kube-router's policy chains, then its sets, off the host (enforcement off);
    ``bin_dir`` is the tree's bin/, whose ipset (the snap's) is run before the host's.

    Returns what was removed ("iptables filter", "ipset KUBE-SRC-..."), for a log line.
    Every other rule and set of the host stays as it was.
    """
    from microkube.snap.leftovers import IPSET_PREFIXES, remove_chains, remove_ipsets

    done = [f"iptables {t}" for t in remove_chains(prefixes=CHAIN_PREFIXES)]
    return done + [f"ipset {name}" for name in remove_ipsets(bin_dir, IPSET_PREFIXES)]
