"""What ``microkube add-node`` makes: a stored token and the join commands that carry it.

A join command is ``microkube join <ip>:<port>/<token>/<fingerprint>`` (with
``--worker`` for a worker), one per address of this node, its main address
(the node IP) first. The fingerprint pins the cluster CA, not a leaf, so a
re-issued serving certificate never breaks a join string.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from microkube.cluster.joinstring import IPAddress, JoinString
from microkube.cluster.tokens import TokenStore, check_token_format, check_ttl, new_token
from microkube.errors import UsageError
from microkube.node.guard import require_set_up
from microkube.paths import Paths
from microkube.pki.certs import fingerprint, load_cert
from microkube.pki.errors import PkiError
from microkube.services.base import NodeContext
from microkube.services.cluster_agent import agent_port

FORMATS = ("pretty", "short", "json")


@dataclass(frozen=True)
class Invitation:
    """A token that was just stored, and where joiners reach this node with it."""

    token: str
    fingerprint: str  # SHA-256 of the cluster CA certificate, 64 hex digits
    port: int
    addresses: tuple[IPAddress, ...]  # the main address first
    ttl: int  # seconds
    expires_at: float  # epoch seconds

    def join_string(self, ip: IPAddress) -> JoinString:
        return JoinString(ip, self.port, self.token, self.fingerprint)

    def command(self, ip: IPAddress, worker: bool = False) -> str:
        """The command to run on the joining node, to reach this one at ``ip``."""
        return f"microkube join {self.join_string(ip)}" + (" --worker" if worker else "")


def node_addresses(node_ip: str, host_ips: Iterable[IPAddress]) -> tuple[IPAddress, ...]:
    """Every address a joiner may use: the node IP first, then the host's others.

    A loopback node IP (a host without a default route) is listed only when the
    host has no other address.
    """
    main = ipaddress.ip_address(node_ip)
    others = [ip for ip in host_ips if ip != main]
    if main.is_loopback and others:
        return tuple(dict.fromkeys(others))
    return tuple(dict.fromkeys([main, *others]))


def create(paths: Paths, ttl: int, token: str | None = None,
           host_ips: Callable[[], list[IPAddress]] | None = None,
           clock: Callable[[], float] = time.time) -> Invitation:
    """Store a join token for ``ttl`` seconds (``token``, or a random one) and describe it.

    Everything is checked before the token is written. Raises NotSetUpError (the line
    every verb gives) when the node was never set up; UsageError when it has no cluster
    CA, or the token or lifetime is malformed or the token exists; TokenStoreError when
    the token file is damaged.
    """
    check_ttl(ttl)
    token = new_token() if token is None else check_token_format(token)
    require_set_up(paths)
    ctx = NodeContext.load(paths)
    port = agent_port(ctx)
    ca_path = paths.pki.ca.cert
    if not ca_path.exists():
        raise UsageError(f"{ca_path}: missing; start the node once ('microkube start') "
                         "to make the cluster CA")
    try:
        ca_fingerprint = fingerprint(load_cert(ca_path))
    except PkiError as e:
        raise UsageError(str(e)) from None
    if host_ips is None:
        from microkube.pki import hostinfo

        host_ips = hostinfo.host_ips
    addresses = node_addresses(ctx.node.node_ip, host_ips())
    record = TokenStore(paths.cluster_tokens_file, clock).add(token, ttl)
    return Invitation(token, ca_fingerprint, port, addresses, ttl, record.expires)


# --- output ------------------------------------------------------------------------------


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(round(epoch), dt.UTC)


def render_pretty(inv: Invitation) -> str:
    """MicroK8s's wording, plus each address's worker form and when the token expires."""
    main, *others = inv.addresses
    lines = [
        "From the node you wish to join to this cluster, run the following:",
        inv.command(main),
        "",
        "Use the '--worker' flag to join a node as a worker not running the control plane, eg:",
        inv.command(main, worker=True),
        "",
    ]
    if others:
        lines += ["If the node you are adding cannot reach this one at "
                  f"{main}, use one of these addresses instead:"]
        for ip in others:
            lines += [inv.command(ip), inv.command(ip, worker=True)]
        lines += [""]
    lines += [
        f"The token joins one node and expires in {_duration(inv.ttl)} "
        f"({_utc(inv.expires_at):%Y-%m-%d %H:%M:%S} UTC).",
        "The joining node checks this cluster's CA against the fingerprint "
        "(the join string's last part) before it sends the token.",
    ]
    return "\n".join(lines)


def render_short(inv: Invitation) -> str:
    """One command per line: every address's control-plane form, then every worker form."""
    return "\n".join([*(inv.command(ip) for ip in inv.addresses),
                      *(inv.command(ip, worker=True) for ip in inv.addresses)])


def render_json(inv: Invitation) -> str:
    """Everything a script needs, as one JSON object."""
    return json.dumps({
        "token": inv.token,
        "fingerprint": inv.fingerprint,
        "port": inv.port,
        "ttl_seconds": inv.ttl,
        "expires_at": _utc(inv.expires_at).isoformat().replace("+00:00", "Z"),
        "join_strings": [str(inv.join_string(ip)) for ip in inv.addresses],
        "commands": [{"address": str(ip), "control_plane": inv.command(ip),
                      "worker": inv.command(ip, worker=True)} for ip in inv.addresses],
    }, indent=2)


RENDERERS: dict[str, Callable[[Invitation], str]] = {
    "pretty": render_pretty, "short": render_short, "json": render_json,
}
