"""Address ranges as users write them for a load balancer's pool.

``10.64.140.43-10.64.140.49``, ``192.168.1.240/28`` or several of either
separated by commas (MicroK8s's ``enable metallb:`` spelling). Each is
checked on its own (a real range, one address family, usable addresses) and
against the others (no overlap); the first problem is one ValueError line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class IPRange:
    """Addresses ``first`` to ``last``, both included; ``text`` as MetalLB takes it."""

    first: IPAddress
    last: IPAddress
    text: str

    @property
    def size(self) -> int:
        """How many addresses the range holds."""
        return int(self.last) - int(self.first) + 1

    def overlaps(self, other: IPRange) -> bool:
        """True when the two ranges share an address (ranges of two families never do)."""
        return (self.first.version == other.first.version
                and int(self.first) <= int(other.last) and int(other.first) <= int(self.last))

    def contains(self, address: str) -> bool:
        """True when ``address`` (text) is an address of this range; False for non-addresses."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return ip.version == self.first.version and int(self.first) <= int(ip) <= int(self.last)


def parse_ranges(text: str) -> list[IPRange]:
    """The comma-separated ranges in ``text``, in the order given.

    Raises ValueError with one line naming the first bad piece.
    """
    pieces = [p.strip() for p in text.split(",")]
    if not text.strip() or not all(pieces):
        raise ValueError(f"'{text}' is not a comma-separated list of address ranges "
                         "(e.g. 10.64.140.43-10.64.140.49 or 192.168.1.240/28)")
    ranges = [parse_range(p) for p in pieces]
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            if a.overlaps(b):
                raise ValueError(f"'{a.text}' and '{b.text}' overlap")
    return ranges


def parse_range(text: str) -> IPRange:
    """One range: FIRST-LAST or a CIDR (a single address is a range of one).

    Raises ValueError with one line saying what is wrong.
    """
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as e:
            if "host bits set" in str(e):
                fixed = ipaddress.ip_network(text, strict=False)
                raise ValueError(f"'{text}' is not a network address; did you mean {fixed}?"
                                 ) from None
            raise ValueError(f"'{text}' is not a CIDR (e.g. 192.168.1.240/28)") from None
        rng = IPRange(net.network_address, net.broadcast_address, str(net))
    else:
        start, dash, end = text.partition("-")
        first = _address(start.strip(), text)
        last = _address(end.strip(), text) if dash else first
        if first.version != last.version:
            raise ValueError(f"'{text}' mixes IPv4 and IPv6")
        if int(last) < int(first):
            raise ValueError(f"'{text}' ends before it starts")
        rng = IPRange(first, last, f"{first}-{last}")
    _check_usable(rng)
    return rng


def _address(text: str, whole: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"'{whole}' is not an address range: '{text}' is not an IP address "
                         "(e.g. 10.64.140.43-10.64.140.49)") from None


def _check_usable(rng: IPRange) -> None:
    for ip in (rng.first, rng.last):
        if ip.is_loopback or ip.is_multicast or ip.is_unspecified or ip.is_link_local:
            kind = next(k for k, bad in (("loopback", ip.is_loopback),
                                         ("multicast", ip.is_multicast),
                                         ("unspecified", ip.is_unspecified),
                                         ("link-local", ip.is_link_local)) if bad)
            raise ValueError(f"'{rng.text}' holds {kind} addresses, which no Service can use")


def clashes(ranges: Iterable[IPRange], networks: dict[str, str]) -> str | None:
    """The first clash of a range with one of ``networks`` ({what: CIDR}), as a line; or None."""
    for rng in ranges:
        for what, cidr in networks.items():
            net = ipaddress.ip_network(cidr, strict=False)
            whole = IPRange(net.network_address, net.broadcast_address, str(net))
            if rng.overlaps(whole):
                return f"'{rng.text}' overlaps the {what} {cidr}"
    return None
