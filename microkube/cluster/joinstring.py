"""The join string ``microkube add-node`` prints: ``<ip>:<port>/<token>/<fingerprint>``.

The address is an IP (IPv6 in brackets: ``[2001:db8::1]:<port>``), the port
the cluster agent's, the token a join token, and the fingerprint the full
SHA-256 of the cluster CA certificate (64 hex digits), which the joiner checks
before it sends the token. Each kind of malformation gets its own one-line
UsageError.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from microkube.cluster.tokens import check_token_format
from microkube.errors import UsageError

FORM = "<ip>:<port>/<token>/<fingerprint>"
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# How much of a wrong part of a join string a message quotes (characters).
SHOWN = 40


@dataclass(frozen=True)
class JoinString:
    """A parsed join string."""

    ip: IPAddress
    port: int
    token: str
    fingerprint: str  # 64 lowercase hex digits

    @property
    def address(self) -> str:
        """``ip:port``, with the IPv6 address in brackets."""
        return format_address(self.ip, self.port)

    def __str__(self) -> str:
        return f"{self.address}/{self.token}/{self.fingerprint}"


def format_address(ip: IPAddress, port: int) -> str:
    """``ip:port``; an IPv6 address in brackets."""
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def parse(text: str, label: str | None = None) -> JoinString:
    """Parse ``text``; raises UsageError naming what is wrong with it.

    The message starts with ``label`` (e.g. a launch file's key) if given, else with
    "join string"; it never repeats the whole string (its token is a secret, and the string
    may be any length), only the part that is wrong, cut to :data:`SHOWN` characters.
    """
    try:
        return _parse(text.strip())
    except ValueError as e:
        raise UsageError(f"{label or 'join string'}: {e} (expected {FORM})") from None


def _shown(part: str) -> str:
    """``part`` quoted for a message, cut to SHOWN characters."""
    return repr(part if len(part) <= SHOWN else part[:SHOWN] + "...")


def _parse(text: str) -> JoinString:
    parts = text.split("/")
    if len(parts) != 3:
        raise ValueError(f"has {len(parts)} part{'s' if len(parts) != 1 else ''} "
                         "separated by '/', not 3")
    address, token, fingerprint = parts
    ip, port = _parse_address(address)
    try:
        check_token_format(token)
    except UsageError as e:
        raise ValueError(str(e)) from None
    fp = fingerprint.lower().replace(":", "")
    if not _FINGERPRINT.match(fp):
        raise ValueError("the fingerprint must be the CA certificate's SHA-256: 64 hex digits")
    return JoinString(ip, port, token, fp)


def _parse_address(address: str) -> tuple[IPAddress, int]:
    if address.startswith("["):
        host, sep, port_text = address[1:].partition("]:")
        if not sep:
            raise ValueError("an IPv6 address needs the form [address]:port")
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep:
            raise ValueError("the address has no port")
        if ":" in host:
            raise ValueError("an IPv6 address must be in brackets: [address]:port")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{_shown(host)} is not an IP address") from None
    if address.startswith("[") and ip.version != 6:
        raise ValueError("only an IPv6 address goes in brackets")
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        # fe80::1%eth0: the zone names one of this host's interfaces, not the node's address.
        raise ValueError(f"{_shown(host)} has a zone (%{ip.scope_id}); give the node's address "
                         "without one")
    if ip.is_unspecified or ip.is_multicast:
        raise ValueError(f"{ip} is not the address of a node")
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
            and 0 < int(port_text) < 65536):
        raise ValueError(f"{_shown(port_text)} is not a port number (1-65535)")
    return ip, int(port_text)
