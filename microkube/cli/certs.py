"""``microkube refresh-certs``: see when certificates expire, and renew them."""

from __future__ import annotations

import sys

import click

from microkube.paths import Paths


@click.command("refresh-certs")
@click.option("--check", is_flag=True, help="Only list expiry dates; exit 1 if one is near.")
@click.option("--cert", "certs", multiple=True,
              help="Renew only this certificate (e.g. server.crt); repeatable.")
def refresh_certs(check: bool, certs: tuple[str, ...]) -> None:
    """Renew the node's leaf certificates (CAs are never replaced)."""
    from microkube.node import certs as node_certs
    from microkube.pki.renewal import RENEW_WITHIN_DAYS, expiries

    paths = Paths.from_env()
    if check:
        near = False
        for e in expiries(paths):
            flag = "  <- renew soon" if e.days_left < RENEW_WITHIN_DAYS else ""
            near = near or bool(flag)
            click.echo(f"{e.path.name:<32} expires {e.not_after:%Y-%m-%d} ({e.days_left} days){flag}")
        sys.exit(1 if near else 0)
    renewed = node_certs.refresh_certs(paths, list(certs), lambda s: click.echo(s, err=True))
    click.echo("renewed: " + (", ".join(renewed) if renewed else "nothing"))


def register(group: click.Group) -> None:
    group.add_command(refresh_certs)
