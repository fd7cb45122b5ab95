"""Everything a node needs on disk before its daemons start.

Idempotent: the first run creates the tree, settings, argument files,
configs and certificates; later runs keep what exists (a user's edits
included), re-issue certificates whose host names or IPs went stale, and
check every argument file so a corrupt one is reported before anything
starts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from microkube.config import address, args, node
from microkube.config.node import NodeConfig
from microkube.datastore.settings import ETCD
from microkube.errors import MicrokubeError
from microkube.paths import Paths
from microkube.services.base import NodeContext
from microkube.services.registry import daemons_for

if TYPE_CHECKING:  # cryptography stays out of the supervisor until it renews
    from microkube.pki.node import PkiReport


def load_context(paths: Paths) -> NodeContext:
    """The node as it is configured now; fails with one line if it was never set up."""
    return NodeContext.load(paths)


def prepare(paths: Paths, launch_file: Path | None = None,
            progress: Callable[[str], None] | None = None) -> NodeContext:
    """Set up (or re-check) the node on disk; its context. UsageError for bad settings.

    A node never set up takes its settings from ``launch_file``, else from the
    well-known launch file if there is one (node/launch.py), else the environment.
    A node whose address left the host while it was stopped moves to the new one
    (config/address.py, datastore/peermove.py); ``progress`` hears what changed.
    """
    # Loaded here, not at the top: the supervisor imports this module too, and should not
    # keep jinja2 and the datastore's encryption in memory for the node's lifetime.
    from microkube.config import render
    from microkube.datastore import encryption
    from microkube.node.launch import first_start

    # Settings first: a name, address or launch file that is refused leaves nothing on disk.
    set_up = paths.state_file.exists()
    first_start(paths, launch_file)
    config = node.load_or_create(paths.state_file, in_snap=paths.in_snap)
    say = progress or (lambda line: None)
    move = None
    if set_up:  # a new node keeps the address it was given, even one not on the host (yet)
        config, move = address.follow(paths.state_file, config, os.environ, paths.in_snap)
    if move is not None:
        say(move.line())
    paths.ensure()
    args.install_defaults(paths)
    render.ensure_configs(paths, config)
    if not config.is_worker:
        # A worker holds no cluster secret: its certificates come from its control plane when
        # it joins (cluster/join.py), and it has no API server to encrypt for.
        encryption.ensure(paths)
        from microkube.pki.node import ensure_node_pki

        report = ensure_node_pki(**pki_identity(paths, config))
        if move is not None:
            say(f"re-issued for {move.new}: {', '.join(report.renewed) or 'nothing'}")
        if config.datastore == ETCD:
            from microkube.datastore import peermove

            fix = peermove.update_through_others(paths, config.node_name, config.node_ip)
            if fix is not None:
                say(fix.line())
        # Fresh now, so the supervisor's certificate checks answer without cryptography.
        from microkube.pki.expiry_summary import earliest_expiry_summary

        earliest_expiry_summary(paths)
    elif move is not None:
        _reissue_worker_serving(paths, config, move.new, say)
    if not config.network_policy:
        # Enforcement turned off: no chain or set of the policy controller may stay behind.
        from microkube.services.netpol import remove_rules

        remove_rules(paths.bin_dir)
    ctx = NodeContext(paths, config)
    for daemon in daemons_for(config):
        # Each argument file: a daemon's own (and those it reads too), or one per part of kubelite.
        for name in daemon.parts or (daemon.name, *daemon.also_reads):
            ctx.args(name)  # raises UsageError naming the file and line
    return ctx


def _reissue_worker_serving(paths: Paths, config: NodeConfig, new_ip: str,
                            say: Callable[[str], None]) -> None:
    """Have a control plane sign the worker's kubelet serving certificate for its new
    address ``new_ip``, so the API server's logs and exec reach it (the API server checks
    the kubelet's certificate, and a worker holds no CA key). A control plane that cannot
    be reached leaves the old certificate and says so; the node still starts."""
    from microkube.cluster.renew import renew_worker

    try:
        done = renew_worker(paths, config, ["kubelet.crt"])
        say(f"re-issued for {new_ip} by the control plane at {done.agent}: kubelet.crt")
    except MicrokubeError as e:
        say(f"the kubelet's serving certificate still names the old address ({e}): pods' "
            f"logs and exec on this node need `microkube refresh-certs --cert kubelet.crt` "
            f"once a control plane answers")


def pki_identity(paths: Paths, config: NodeConfig) -> dict[str, Any]:
    """The arguments that describe this node to the PKI, for ensure and refresh alike."""
    from microkube.pki.hostinfo import host_ips

    return {
        "certs_dir": paths.certs_dir,
        "credentials_dir": paths.credentials_dir,
        "node_name": config.node_name,
        "host_ips": [*host_ips(), config.node_ip],
        "hostname": socket.gethostname(),
        "service_cidr": config.service_cidr,
        "cluster_domain": config.cluster_domain,
        "api_server_url": config.api_url,
    }


def ensure_pki(paths: Paths, config: NodeConfig) -> PkiReport:
    """Create or renew (when due, or no longer naming the node) this control plane's
    certificates and kubeconfigs from its CAs; returns what was written."""
    from microkube.pki.node import ensure_node_pki

    return ensure_node_pki(**pki_identity(paths, config))
