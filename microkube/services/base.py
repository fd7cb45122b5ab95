"""The lifecycle every node daemon follows: prepare, start, ready, stop.

A daemon is a small type that knows its command line, what it needs on
disk before it starts, how to tell it is serving, and which daemons must
be serving before it can start. The supervisor (outside a snap) or
snapd (inside one) owns the processes themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import ClassVar

from microkube.config import args
from microkube.config.node import NodeConfig
from microkube.paths import Paths

GOGC_DEFAULT = "25"


@dataclass
class NodeContext:
    """What every daemon needs to know about the node it runs on."""

    paths: Paths
    node: NodeConfig
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @classmethod
    def load(cls, paths: Paths) -> NodeContext:
        """The node as configured now; one clear line if it was never set up."""
        from microkube.config import node

        return cls(paths, node.load(paths.state_file, paths.yaml_cache_dir))

    def args(self, daemon: str) -> list[str]:
        """``daemon``'s flags from its argument file, with the node's values and the etcd
        members the API server may use (${ETCD_SERVERS}: datastore/membership.py)."""
        from microkube.datastore.membership import etcd_servers

        values = self.node.substitutions()
        if daemon == "kube-apiserver" and not self.node.is_worker:
            values["ETCD_SERVERS"] = etcd_servers(self.paths, self.node.node_ip)
        return args.read(self.paths, daemon, values)


class Daemon:
    """One supervised process. Subclasses set the class attributes and override hooks."""

    name: ClassVar[str]
    binary: ClassVar[str]
    # Daemons that must have become ready once before this one starts.
    after: ClassVar[tuple[str, ...]] = ()
    # Those of ``after`` that need only run and accept connections (``accepts``), maybe before
    # they serve and while their after_ready work still runs: this daemon dials them itself
    # and waits until they answer (the supervisor's ordering; a snap's runner still waits for
    # them to be ready).
    after_accepting: ClassVar[tuple[str, ...]] = ()
    # The upstream daemons this one process runs, each with its own argument file (kubelite).
    parts: ClassVar[tuple[str, ...]] = ()
    # Argument files read besides its own (the cluster agent's deployer thread: manifests),
    # checked with it at set-up.
    also_reads: ClassVar[tuple[str, ...]] = ()
    # Seconds to wait after SIGTERM before SIGKILL.
    stop_timeout: ClassVar[float] = 10.0
    # Go's GC target (GOGC) for a Go daemon, unless the environment sets one.
    gogc: ClassVar[str] = GOGC_DEFAULT

    def prepare(self, ctx: NodeContext) -> None:
        """Put on disk what the daemon needs; runs before every start."""

    def can_start(self, ctx: NodeContext) -> bool:
        """Beyond ``after``: a condition to wait for, so the daemon does not start only to exit."""
        return True

    def command(self, ctx: NodeContext) -> list[str]:
        return [str(ctx.paths.binary(self.binary)), *ctx.args(self.name)]

    def environment(self, ctx: NodeContext) -> dict[str, str]:
        env = dict(ctx.environ)
        # Shims, runc and iptables are found through PATH.
        # A tighter Go GC target: at idle it costs little CPU and cuts ~100 MB off a node.
        env.setdefault("GOGC", self.gogc)
        system_path = env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        env["PATH"] = os.pathsep.join([str(ctx.paths.bin_dir), system_path])
        return env

    def ready(self, ctx: NodeContext) -> bool:
        """True once the daemon serves; must be quick (well under a second)."""
        return True

    def accepts(self, ctx: NodeContext) -> bool:
        """True once the daemon accepts connections, maybe before it serves (default: once it
        is ready); quick, as ``ready`` is."""
        return self.ready(ctx)

    def after_ready(self, ctx: NodeContext) -> None:
        """One-shot work once the daemon first serves (e.g. importing images)."""

    def cleanup(self, ctx: NodeContext) -> None:
        """Undo what the daemon left behind once it has stopped (mounts, links)."""
