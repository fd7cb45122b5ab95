"""Facts about this host that go into certificates: its addresses and the service IPs."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import psutil

from microkube.errors import UsageError
from microkube.pki.certs import IPAddress

# Interfaces microkube itself creates. Their addresses appear only once the
# node runs; counting them would re-issue the serving certificates on the
# first restart, and nobody reaches the API server through them anyway.
OWN_INTERFACE_PREFIXES = ("cni", "flannel", "veth")


class InterfaceAddress(Protocol):
    """The part of psutil's ``snicaddr`` we read."""

    @property
    def family(self) -> int: ...

    @property
    def address(self) -> str: ...


def select_host_ips(
    addrs: Mapping[str, Sequence[InterfaceAddress]],
    up: Iterable[str],
    exclude_prefixes: Sequence[str] = OWN_INTERFACE_PREFIXES,
) -> list[IPAddress]:
    """The usable addresses among ``addrs`` on the interfaces named in ``up``.

    Loopback, link-local and multicast addresses are left out; IPv4 first.
    """
    up_set = set(up)
    found: set[IPAddress] = set()
    for name, entries in addrs.items():
        if name not in up_set or name.startswith(tuple(exclude_prefixes)):
            continue
        for entry in entries:
            if entry.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(entry.address.split("%", 1)[0])
            except ValueError:
                continue
            if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
                continue
            found.add(ip)
    return sorted(found, key=lambda ip: (ip.version, ip))


def host_ips(exclude_prefixes: Sequence[str] = OWN_INTERFACE_PREFIXES) -> list[IPAddress]:
    """This host's addresses on interfaces that are up (not loopback, not link-local)."""
    up = [name for name, st in psutil.net_if_stats().items() if st.isup]
    return select_host_ips(psutil.net_if_addrs(), up, exclude_prefixes)


def parse_ips(values: Iterable[str | IPAddress]) -> list[IPAddress]:
    out: list[IPAddress] = []
    for value in values:
        try:
            out.append(ipaddress.ip_address(value))
        except ValueError:
            raise UsageError(f"not an IP address: {value!r}") from None
    return out


def service_ips(service_cidr: str) -> list[IPAddress]:
    """The first address of each service range: the ``kubernetes`` service's IP.

    ``service_cidr`` is what kube-apiserver's --service-cluster-ip-range takes:
    one range, or two (IPv4 and IPv6) separated by a comma.
    """
    out: list[IPAddress] = []
    for part in service_cidr.split(","):
        try:
            net = ipaddress.ip_network(part.strip(), strict=True)
        except ValueError:
            raise UsageError(f"not a service CIDR: {service_cidr!r}") from None
        if net.num_addresses < 4:
            raise UsageError(f"service CIDR {part.strip()} is too small")
        out.append(net.network_address + 1)
    return out
