"""``microkube refresh-certs``: see when certificates expire, and renew them."""

from __future__ import annotations

import sys

import click

from microkube.paths import Paths


@click.command("refresh-certs")
@click.option("--check", is_flag=True, help="Only list expiry dates; exit 1 if one is due.")
@click.option("--cert", "certs", multiple=True,
              help="Renew only this certificate (e.g. server.crt); repeatable. "
                   "ca.crt alone rotates a single-node cluster's CA.")
@click.option("--due", is_flag=True,
              help="Renew only what is due (what the supervisor does by itself; the snap's "
                   "renew-certs timer runs this). A node not set up has nothing to renew.")
def refresh_certs(check: bool, certs: tuple[str, ...], due: bool) -> None:
    """Renew the node's leaf certificates without stopping its workloads."""
    from microkube.node import certs as node_certs
    from microkube.node.guard import is_set_up, require_set_up
    from microkube.pki.renewal import certificate_report

    paths = Paths.from_env()
    if due and certs:
        raise click.UsageError("--due renews what is due: give it no --cert")
    if due and not is_set_up(paths):
        click.echo("not set up: nothing to renew")
        return
    require_set_up(paths)
    if check:
        import datetime as dt

        now = dt.datetime.now(dt.UTC)
        due = False
        found = certificate_report(paths)  # one read of every certificate
        for e in found.expiries:
            flag = "  <- due for renewal" if not e.is_ca and e.renew_at <= now else ""
            due = due or bool(flag)
            name = paths.pki.display_name(e.path)
            click.echo(f"{name:<32} expires {e.not_after:%Y-%m-%d %H:%M} ({e.days_left} days)"
                       f"{flag}")
        for path, why in found.unreadable:  # as due as can be
            due = True
            name = paths.pki.display_name(path)
            hint = "" if paths.pki.is_ca_cert(path) else \
                f"  <- 'microkube refresh-certs --cert {name}' writes it anew"
            click.echo(f"{name:<32} cannot be read ({why}){hint}")
        sys.exit(1 if due else 0)
    report = node_certs.refresh_certs(paths, list(certs), lambda s: click.echo(s, err=True),
                                      due_only=due)
    for line in report.lines():
        click.echo(line)


def register(group: click.Group) -> None:
    group.add_command(refresh_certs)
