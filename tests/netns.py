"""A network namespace of the test's own for a node: loopback and a veth pair.

The namespace's default route leads into the pair's other end, which is in the
namespace too: nothing sent from it leaves the machine.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def create(name: str, ip: str) -> None:
    """Make namespace ``name`` with ``ip``/24 on its link mk0 and a default route through it.

    Raises CalledProcessError from ip (e.g. the name is taken).
    """
    _sh("ip", "netns", "add", name)
    ns = ["ip", "-n", name]
    _sh(*ns, "link", "set", "lo", "up")
    # This kernel has no dummy links: a veth pair with both ends inside serves.
    _sh(*ns, "link", "add", "mk0", "type", "veth", "peer", "name", "mk0p")
    _sh(*ns, "addr", "add", f"{ip}/24", "dev", "mk0")
    _sh(*ns, "link", "set", "mk0p", "up")
    _sh(*ns, "link", "set", "mk0", "up")
    _sh(*ns, "route", "add", "default", "dev", "mk0")


BRIDGE = "br0"


def create_bridge(name: str) -> None:
    """Make namespace ``name`` holding only loopback and an up bridge ``br0``: the test's own LAN.

    Nodes attach to it with :func:`create_on_bridge`; nothing on it reaches beyond it.
    """
    _sh("ip", "netns", "add", name)
    _sh("ip", "-n", name, "link", "set", "lo", "up")
    _sh("ip", "-n", name, "link", "add", BRIDGE, "type", "bridge")
    _sh("ip", "-n", name, "link", "set", BRIDGE, "up")


def create_on_bridge(name: str, ip: str, bridge_ns: str, port: str) -> None:
    """Make namespace ``name`` with ``ip``/24 on mk0, whose veth peer ``port`` is a port of the
    bridge in ``bridge_ns``; its default route leads onto that bridge."""
    _sh("ip", "netns", "add", name)
    ns = ["ip", "-n", name]
    _sh(*ns, "link", "set", "lo", "up")
    _sh(*ns, "link", "add", "mk0", "type", "veth", "peer", "name", port, "netns", bridge_ns)
    _sh("ip", "-n", bridge_ns, "link", "set", port, "master", BRIDGE)
    _sh("ip", "-n", bridge_ns, "link", "set", port, "up")
    _sh(*ns, "addr", "add", f"{ip}/24", "dev", "mk0")
    _sh(*ns, "link", "set", "mk0", "up")
    _sh(*ns, "route", "add", "default", "dev", "mk0")


def move_address(name: str, old: str, new: str, dev: str = "mk0") -> None:
    """``dev`` in namespace ``name`` loses ``old``/24 and gets ``new``/24, as a new DHCP lease
    would give it; the default route is laid through ``dev`` again."""
    _sh("ip", "-n", name, "addr", "del", f"{old}/24", "dev", dev)
    _sh("ip", "-n", name, "addr", "add", f"{new}/24", "dev", dev)
    _sh("ip", "-n", name, "route", "replace", "default", "dev", dev)


def add_link(name: str, ip: str, link: str = "mk1") -> None:
    """A link ``link`` in namespace ``name`` with ``ip``/24 and no route beyond its subnet: an
    interface microkube does not use (a veth pair with both ends inside)."""
    ns = ["ip", "-n", name]
    _sh(*ns, "link", "add", link, "type", "veth", "peer", "name", f"{link}p")
    _sh(*ns, "addr", "add", f"{ip}/24", "dev", link)
    _sh(*ns, "link", "set", f"{link}p", "up")
    _sh(*ns, "link", "set", link, "up")


def delete(name: str) -> None:
    """Delete the namespace (and its links); a missing one is no error."""
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


def in_netns(name: str, argv: list[str]) -> list[str]:
    """argv run in the namespace's network only.

    nsenter switches only the network namespace; `ip netns exec` would also
    remount /sys and hide the cgroup hierarchy from the kubelet.
    """
    return ["nsenter", f"--net=/run/netns/{name}", "--", *argv]


@contextlib.contextmanager
def network_namespace(name: str, ip: str) -> Iterator[str]:
    """The namespace of :func:`create` for the with-block; yields its name, then deletes it."""
    try:
        create(name, ip)
        yield name
    finally:
        delete(name)
