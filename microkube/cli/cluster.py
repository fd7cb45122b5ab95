"""Cluster verbs: ``add-node``, ``join [--worker]``, ``leave`` and ``remove-node``."""

from __future__ import annotations

import click

from microkube.cluster import DEFAULT_TOKEN_TTL
from microkube.paths import Paths


@click.command("add-node")
@click.option("--token-ttl", "-l", type=int, default=DEFAULT_TOKEN_TTL, show_default=True,
              help="Seconds until the token expires; it joins one node.")
@click.option("--token", "-t", default=None,
              help="Use this token (32-128 letters, digits, '-' or '_') instead of a random one.")
@click.option("--format", "fmt", type=click.Choice(["pretty", "short", "json"]), default="pretty",
              show_default=True)
def add_node(token_ttl: int, token: str | None, fmt: str) -> None:
    """Make a join token and print the commands that join another node with it."""
    from microkube.cluster import invitation

    inv = invitation.create(Paths.from_env(), token_ttl, token)
    click.echo(invitation.RENDERERS[fmt](inv))


@click.command()
@click.argument("join_string")
@click.option("--worker", is_flag=True,
              help="Join as a worker: containerd, kubelet, kube-proxy and flannel only.")
@click.option("--timeout", type=float, default=120.0, show_default=True,
              help="Seconds the whole join may take.")
@click.option("--force", is_flag=True,
              help="Discard this node's own single-node cluster even if it holds workloads or "
                   "volume claims, or is stopped (a cluster with other nodes is never discarded).")
def join(join_string: str, worker: bool, timeout: float, force: bool) -> None:
    """Join the cluster of the node that printed JOIN_STRING (from 'microkube add-node').

    A node that runs a cluster of only itself (a fresh install, or after 'leave')
    discards it and joins.
    """
    from microkube.cluster import join as cluster_join
    from microkube.cluster.joinstring import parse
    from microkube.errors import UsageError

    parsed = parse(join_string)
    if not 0 < timeout < float("inf"):  # nan fails every comparison: refused too
        raise UsageError(f"--timeout {timeout:g}: must be a positive number of seconds")

    if worker:
        config = cluster_join.join_worker(Paths.from_env(), parsed, _progress, timeout, force)
        click.echo(f"{config.node_name} joined the cluster as a worker")
        return
    from microkube.cluster.cpjoin import SHARED, join_control_plane

    config, role = join_control_plane(Paths.from_env(), parsed, _progress, timeout,
                                      force)
    how = f"sharing its {config.datastore} datastore" if role == SHARED else f"etcd {role}"
    click.echo(f"{config.node_name} joined the cluster as a control plane ({how})")


def _progress(line: str) -> None:
    click.echo(line, err=True)


@click.command()
def leave() -> None:
    """Leave the cluster: a control plane removes this node, which starts again on its own."""
    from microkube.cluster.leave import leave as cluster_leave

    left = cluster_leave(Paths.from_env(), _progress)
    click.echo(f"{left.name} left the cluster and runs as a fresh single node")


@click.command("remove-node")
@click.argument("node")
@click.option("--force", is_flag=True,
              help="Remove it even if it is Ready, unreachable, or only a datastore member.")
def remove_node(node: str, force: bool) -> None:
    """Remove NODE (a name or IP address) from the cluster; run it on a control plane."""
    from microkube.cluster.roster import remove_node as cluster_remove_node

    removal = cluster_remove_node(Paths.from_env(), node, force, _progress)
    click.echo(f"removed {removal.describe()}")


def register(group: click.Group) -> None:
    for cmd in (add_node, join, leave, remove_node):
        group.add_command(cmd)
