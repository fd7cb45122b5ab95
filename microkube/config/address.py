"""Whether the node's address moved while it was stopped, and to which address.

The node's address (``node_ip`` in its settings) is chosen at its first start
and kept. A DHCP lease that moves the host to a new address must not leave a
node that never comes back, and an address added to some other interface
must change nothing. So the rule (:func:`choose_address`) is narrow: the kept
address stays while it is on any of the host's interfaces; only when it is
gone does the node take another one, in this order: ``MICROKUBE_NODE_IP``
when that address is on the host, the address of the interface holding the
default route, the host's only usable address of the same IP version. With
none of those it refuses with one line that names the fix.

:func:`follow` gathers the host's facts (psutil, the route table) and saves
the settings with the new address; the argument files expand ``${NODE_IP}``
at each start, so the daemons pick it up with no edit.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from microkube.config import node
from microkube.config.node import NodeConfig
from microkube.errors import UsageError

ENV_NAME = "MICROKUBE_NODE_IP"


@dataclass(frozen=True)
class AddressMove:
    """The node's address ``old`` is gone from the host; it takes ``new`` (found by ``how``)."""

    old: str
    new: str
    how: str

    def line(self) -> str:
        """One line for the user: what moved, and why this address."""
        return f"this node's address {self.old} is gone; it now uses {self.new} ({self.how})"


class AddressLost(UsageError):
    """The kept address is gone and no single other address replaces it."""


def _same_version(a: str, b: str) -> bool:
    return ipaddress.ip_address(a).version == ipaddress.ip_address(b).version


def choose_address(saved: str, present: Collection[str], explicit: str | None = None,
                   default_route: str | None = None, candidates: Sequence[str] = (),
                   in_snap: bool = False) -> AddressMove | None:
    """None while ``saved`` is among ``present`` (every address on the host, loopback included);
    else the address that replaces it (see the module doc).

    ``explicit`` is MICROKUBE_NODE_IP (or the snap's node.ip), ``default_route`` the IPv4
    address of the default route's interface, ``candidates`` the host's usable addresses
    (no loopback or link-local, microkube's own interfaces left out: pki/hostinfo.py).
    Raises AddressLost when none applies, naming the fix.
    """
    if saved in present:
        return None
    if explicit and explicit in present:
        return AddressMove(saved, explicit, ENV_NAME if not in_snap else "node.ip")
    if default_route and default_route in present and _same_version(default_route, saved):
        return AddressMove(saved, default_route, "the default route's interface")
    same = [ip for ip in dict.fromkeys(candidates) if _same_version(ip, saved)]
    if len(same) == 1:
        return AddressMove(saved, same[0], "the host's only address")
    found = f"found {', '.join(same)}" if same else "found no other address"
    how = ("snap set microkube node.ip=<address>" if in_snap
           else f"start it with {ENV_NAME}=<address>")
    raise AddressLost(f"this node's address {saved} is on none of this host's interfaces "
                      f"({found}); restore it, or {how}")


def host_addresses() -> set[str]:
    """Every address on this host's interfaces, loopback included (psutil)."""
    import psutil

    return {str(ipaddress.ip_address(a.address.split("%", 1)[0]))
            for entries in psutil.net_if_addrs().values() for a in entries
            if a.family in (socket.AF_INET, socket.AF_INET6)}


def follow(state_file: Path, config: NodeConfig, env: Mapping[str, str],
           in_snap: bool = False) -> tuple[NodeConfig, AddressMove | None]:
    """The node's settings, with its address moved and saved if it left the host (and the move).

    Raises AddressLost (see :func:`choose_address`).
    """
    present = host_addresses()
    if config.node_ip in present:  # the common case: no route table, no psutil scan
        return config, None
    from microkube.pki.hostinfo import host_ips

    move = choose_address(config.node_ip, present, env.get(ENV_NAME),
                          node.default_route_ip(), [str(ip) for ip in host_ips()], in_snap)
    if move is None:
        return config, None
    moved = dataclasses.replace(config, node_ip=move.new)
    node.save(state_file, moved)
    return moved, move
