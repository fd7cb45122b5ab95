"""``microkube version``: microkube's version and each component's, as its binary reports it."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    group.add_command(version)


@click.command("version")
def version() -> None:
    """Show the version of microkube and of every component it runs."""
    from microkube import __version__
    from microkube.components.versions import component_versions
    from microkube.paths import Paths

    results = component_versions(Paths.from_env())
    width = max([len("microkube"), *(len(r.probe.component) for r in results)])
    click.echo(f"{'microkube':<{width}} {__version__}")
    for r in results:
        click.echo(f"{r.probe.component:<{width}} {r.describe()}")
