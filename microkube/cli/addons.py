"""``enable``, ``disable`` and ``addons`` (list, repo add/remove/list/update)."""

from __future__ import annotations

import click

from microkube.paths import Paths

# Everything after the first addon name is the addons' own (dns --upstream 1.1.1.1 ingress),
# so 'enable dns --help' reaches the engine, which shows dns's options.
_ADDON_ARGS = {"ignore_unknown_options": True, "allow_interspersed_args": False}
_EPILOG = ("Arguments: 'dns:1.1.1.1,8.8.8.8' or 'dns --upstream 1.1.1.1'; 'REPO/ADDON' picks a "
           "repository. 'microkube enable ADDON --help' lists an addon's options; "
           "'microkube addons list' lists the addons.")


def _write(text: str) -> None:
    click.echo(text, nl=False)


def _run(verb: str, words: tuple[str, ...]) -> None:
    from microkube.addons import arguments, engine
    from microkube.addons.context import Reporter

    try:
        (engine.enable if verb == "enable" else engine.disable)(
            Paths.from_env(), list(words), Reporter(_write))
    except arguments.HelpRequested as h:
        click.echo(arguments.usage(h.addon, disable=verb == "disable"), nl=False)


@click.command(context_settings=_ADDON_ARGS, epilog=_EPILOG)
@click.argument("addons", nargs=-1, type=click.UNPROCESSED)
def enable(addons: tuple[str, ...]) -> None:
    """Enable addons (and the addons they need), e.g. microkube enable dns ingress."""
    _run("enable", addons)


@click.command(context_settings=_ADDON_ARGS, epilog=_EPILOG)
@click.argument("addons", nargs=-1, type=click.UNPROCESSED)
def disable(addons: tuple[str, ...]) -> None:
    """Disable addons, removing what enabling them made."""
    _run("disable", addons)


@click.group()
def addons() -> None:
    """List addons and manage addon repositories."""


@addons.command("list")
def list_() -> None:
    """Every addon of every repository, and whether it is enabled."""
    from microkube.addons.catalog import Catalog
    from microkube.addons.listing import addon_rows
    from microkube.addons.state import AddonState
    from microkube.config import node

    paths = Paths.from_env()
    catalog = Catalog.load(paths)
    state = AddonState.load(paths.addons_state_file)
    values = node.load(paths.state_file).substitutions() if paths.state_file.exists() else {}
    click.echo(f"{'NAME':<20} {'REPOSITORY':<12} {'VERSION':<10} {'STATUS':<9} DESCRIPTION")
    for r in addon_rows(paths, catalog, state, values):
        status = "enabled" if r["enabled"] else "disabled"
        click.echo(f"{r['name']:<20} {r['repository']:<12} {r['version']:<10} {status:<9} "
                   f"{r['description']}")


@addons.group()
def repo() -> None:
    """Addon repositories: a local folder or a git URL with an addons.yaml."""


def _say(line: str) -> None:
    click.echo(line)


@repo.command("add")
@click.argument("name")
@click.argument("source")
@click.option("--reference", help="Git branch or tag to check out (default: the default branch).")
@click.option("--force", is_flag=True, help="Replace a repository of the same name.")
def repo_add(name: str, source: str, reference: str | None, force: bool) -> None:
    """Add the repository at SOURCE (a folder or a git URL) as NAME."""
    from microkube.addons import repos

    repos.add(Paths.from_env(), name, source, reference, force, _say)


@repo.command("remove")
@click.argument("name")
def repo_remove(name: str) -> None:
    """Remove an added repository (its addons must be disabled)."""
    from microkube.addons import repos

    repos.remove(Paths.from_env(), name, _say)


@repo.command("update")
@click.argument("name")
def repo_update(name: str) -> None:
    """Fetch a repository again; a new revision that does not validate is not installed."""
    from microkube.addons import repos

    repos.update(Paths.from_env(), name, _say)


@repo.command("list")
def repo_list() -> None:
    """The repositories this node knows."""
    from microkube.addons import repos

    click.echo(f"{'REPOSITORY':<14} {'ADDONS':>6}  {'REVISION':<24} SOURCE")
    for r in repos.rows(Paths.from_env()):
        click.echo(f"{r.name:<14} {r.addons:>6}  {r.revision:<24} {r.source}")


def register(group: click.Group) -> None:
    for cmd in (enable, disable, addons):
        group.add_command(cmd)
