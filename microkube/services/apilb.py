"""apilb: a worker's node-local API load balancer (components/apilb).

A worker has no API server of its own. Its kubelet, kube-proxy, flannel and netpol
reach the API at ``NodeConfig.api_url`` (https://127.0.0.1:<api_port>), where this
daemon listens and passes each TCP connection, TLS and all, to one of the cluster's
API servers: losing the control plane the worker joined through is survived, as with
k3s's agent load balancer (pkg/agent/loadbalancer) and MicroK8s's apiserver-proxy.

The list of API servers is kept in ``Paths.api_servers_file``: this module seeds it
before every start (the saved list, else the join address) and the balancer rewrites
it, atomically and never empty, from the ``kubernetes`` Service's endpoints. Which
server is in use is in ``Paths.apilb_state_file``, read by ``status`` and the tests.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from microkube.errors import MicrokubeError
from microkube.fsutil import write_atomic
from microkube.probes import tls_accepts, tls_context
from microkube.services.base import Daemon, NodeContext

NAME = "apilb"
# The credential the balancer checks /readyz and lists the API servers' EndpointSlices
# with: kube-proxy's (system:node-proxier may list EndpointSlices).
CREDENTIAL = "proxy"


def host_port(url: str) -> str:
    """An API server URL as ``host:port`` (an IPv6 host in brackets), as the balancer takes it.

    Raises MicrokubeError for a URL without a host or port.
    """
    parts = urlsplit(url)
    if not parts.hostname or parts.port is None:
        raise MicrokubeError(f"'{url}' names no API server host and port")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}"


def read_servers(path: Path) -> list[str]:
    """The saved list of API servers (``host:port``), in file order; [] when the file is
    missing, unreadable or malformed."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    servers = doc.get("servers") if isinstance(doc, dict) else None
    if not isinstance(servers, list):
        return []
    return list(dict.fromkeys(s for s in servers if isinstance(s, str) and s))


def seed_servers(saved: list[str], fallback: str) -> list[str]:
    """What the balancer starts from: the saved list, else the join address ``fallback``.
    Never empty; raises MicrokubeError when both are."""
    servers = list(dict.fromkeys(s for s in saved if s))
    if servers:
        return servers
    if not fallback:
        raise MicrokubeError("no API server known: the saved list is empty and the node has "
                             "no join address")
    return [fallback]


def save_servers(path: Path, servers: list[str]) -> None:
    """Write the list atomically; refuses (MicrokubeError) to write an empty one."""
    if not servers:
        raise MicrokubeError(f"refusing to write an empty list of API servers to {path}")
    write_atomic(path, json.dumps({"servers": servers}) + "\n", 0o644)


@dataclass(frozen=True)
class BalancerState:
    """What the running balancer wrote last: the server in use (``current``), the list,
    the servers whose last checks passed, how often it switched and when (Unix s)."""

    current: str
    servers: list[str]
    healthy: list[str]
    switches: int = 0
    switched_at: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """For ``status --format yaml``."""
        return {"current": self.current, "servers": self.servers, "healthy": self.healthy}


def read_state(path: Path) -> BalancerState | None:
    """The balancer's state file, or None when it does not run (no file) or it is unreadable."""
    try:
        doc = json.loads(path.read_text())
        return BalancerState(str(doc.get("current") or ""), list(doc.get("servers") or []),
                             list(doc.get("healthy") or []), int(doc.get("switches") or 0),
                             float(doc.get("switched_at") or 0.0))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


class ApiLoadBalancer(Daemon):
    """The balancer; ready once a TLS handshake through it reaches an API server whose
    certificate the cluster CA signed for 127.0.0.1."""

    name = NAME
    binary = "apilb"
    stop_timeout = 5.0

    def fallback(self, ctx: NodeContext) -> str:
        """The join address as ``host:port`` ("" on a node that has none)."""
        return host_port(ctx.node.api_server) if ctx.node.api_server else ""

    def prepare(self, ctx: NodeContext) -> None:
        """Seed the saved list (never empty) and drop the state file of an earlier run, so
        the file's presence means this run serves. Raises MicrokubeError when no API
        server is known at all."""
        path = ctx.paths.api_servers_file
        saved = read_servers(path)
        servers = seed_servers(saved, self.fallback(ctx))
        if servers != saved:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_servers(path, servers)
        with contextlib.suppress(FileNotFoundError):
            ctx.paths.apilb_state_file.unlink()
        ctx.paths.run_dir.mkdir(parents=True, exist_ok=True)
        # A worker that joined before it had a balancer: its clients move onto it. Imported
        # here: it loads PyYAML, which status and a control plane's supervisor never need.
        from microkube.pki.workerfiles import point_kubeconfigs

        point_kubeconfigs(ctx.paths.pki, ctx.node.api_url)

    def command(self, ctx: NodeContext) -> list[str]:
        argv = [str(ctx.paths.binary(self.binary)), *ctx.args(self.name),
                f"--servers-file={ctx.paths.api_servers_file}",
                f"--state-file={ctx.paths.apilb_state_file}",
                f"--kubeconfig={ctx.paths.kubeconfig(CREDENTIAL)}"]
        fallback = self.fallback(ctx)
        return argv + ([f"--fallback={fallback}"] if fallback else [])

    def ready(self, ctx: NodeContext) -> bool:
        if not ctx.paths.apilb_state_file.exists():
            return False
        return tls_accepts("127.0.0.1", ctx.node.api_port, tls_context(ctx.paths.pki.ca.cert))
