"""Cluster verbs: ``add-node`` and ``join [--worker]`` (``leave`` and ``remove-node`` come next)."""

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
def join(join_string: str, worker: bool, timeout: float) -> None:
    """Join the cluster of the node that printed JOIN_STRING (from 'microkube add-node')."""
    from microkube.cluster import join as cluster_join
    from microkube.cluster.joinstring import parse
    from microkube.errors import UsageError

    parsed = parse(join_string)
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout:g}: must be a positive number of seconds")

    def progress(line: str) -> None:
        click.echo(line, err=True)

    if worker:
        config = cluster_join.join_worker(Paths.from_env(), parsed, progress, timeout)
        click.echo(f"{config.node_name} joined the cluster as a worker")
        return
    from microkube.cluster.cpjoin import join_control_plane

    config, role = join_control_plane(Paths.from_env(), parsed, progress, timeout)
    click.echo(f"{config.node_name} joined the cluster as a control plane (etcd {role})")


def register(group: click.Group) -> None:
    group.add_command(add_node)
    group.add_command(join)
