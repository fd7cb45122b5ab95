"""The cluster agent: admits joining nodes (microkube.cluster.agent), on every control plane,
and runs the manifest deployer in a thread (services/manifests.py says why)."""

from __future__ import annotations

import ipaddress
import sys

from microkube.config.args import flag_value
from microkube.errors import MicrokubeError, UsageError
from microkube.probes import http_get, tls_context
from microkube.services import manifests
from microkube.services.base import Daemon, NodeContext

# glibc's malloc arenas for the agent (MALLOC_ARENA_MAX), unless the environment sets it.
# By default each thread that allocates (the deployer's, asyncio's executor threads) may
# get an arena of its own that keeps freed memory; two cut ~0.4 MB of idle PSS (issue 11,
# tests/bench_memory.py) and the agent's threads rarely allocate at the same time.
MALLOC_ARENAS = "2"


def agent_port(ctx: NodeContext) -> int:
    """The port the agent listens on: its argument file's --port, else Ports.cluster_agent.

    Raises UsageError naming the argument file if it is missing or broken, or its
    --port is not a port number (1-65535).
    """
    value = flag_value(ctx.args(ClusterAgent.name), "port")
    if value is None:
        return ctx.paths.ports.cluster_agent
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise UsageError(f"{ctx.paths.args_file(ClusterAgent.name)}: --port is not a port "
                         "number (1-65535)")
    return port


def probe_host(ctx: NodeContext) -> str:
    """The address that reaches the agent from this node: its --bind-address, else loopback."""
    bind = flag_value(ctx.args(ClusterAgent.name), "bind-address")
    if bind is None or ipaddress.ip_address(bind).is_unspecified:
        return "127.0.0.1"
    return f"[{bind}]" if ":" in bind else bind


class ClusterAgent(Daemon):
    name = "cluster-agent"
    # The interpreter the snap ships (bin/python3); outside it, the one running microkube.
    binary = "python3"
    # Nothing: it answers joiners itself that the control plane is not ready yet.
    after = ()
    also_reads = ("manifests",)
    stop_timeout = 5.0

    def prepare(self, ctx: NodeContext) -> None:
        manifests.prepare(ctx.paths)

    def command(self, ctx: NodeContext) -> list[str]:
        return [sys.executable, "-P", "-m", "microkube.cluster.agent", *ctx.args(self.name)]

    def environment(self, ctx: NodeContext) -> dict[str, str]:
        """The daemon's environment with MALLOC_ARENAS malloc arenas, unless it sets a number."""
        env = super().environment(ctx)
        env.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENAS)
        return env

    def ready(self, ctx: NodeContext) -> bool:
        """The agent answers, and its manifest deployer has finished its first pass (a pass
        ends even when files fail, e.g. before the API server answers: they are reported)."""
        if not manifests.ready(ctx.paths):
            return False
        try:
            url = f"https://{probe_host(ctx)}:{agent_port(ctx)}/v1/ca"
        except (MicrokubeError, ValueError):  # ValueError: a --bind-address that is no IP
            return False  # a broken argument file: the agent itself says why, in its log
        status, _ = http_get(url, context=tls_context(ctx.paths.pki.ca.cert))
        return status == 200
