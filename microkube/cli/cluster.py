"""Cluster verbs: ``add-node`` (``join``, ``leave`` and ``remove-node`` come next)."""

from __future__ import annotations

import click

from microkube.cluster.tokens import DEFAULT_TTL
from microkube.paths import Paths


@click.command("add-node")
@click.option("--token-ttl", "-l", type=int, default=DEFAULT_TTL, show_default=True,
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


def register(group: click.Group) -> None:
    group.add_command(add_node)
