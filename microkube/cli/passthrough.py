"""kubectl, ctr and helm, preconfigured for this node; exit codes pass through.

``microkube kubectl ...`` normally never reaches these commands: microkube.cli.main
execs the tool before click is imported. They are here for ``--help``'s list and for
callers that run the click group directly.
"""

from __future__ import annotations

import click

from microkube.node.tools import exec_tool

_PASS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@click.command(context_settings=_PASS, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def kubectl(args: tuple[str, ...]) -> None:
    """Run kubectl against this node's cluster."""
    exec_tool("kubectl", list(args))


@click.command(context_settings=_PASS, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def helm(args: tuple[str, ...]) -> None:
    """Run helm against this node's cluster."""
    exec_tool("helm", list(args))


@click.command(context_settings=_PASS, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def ctr(args: tuple[str, ...]) -> None:
    """Run ctr against this node's containerd (namespace k8s.io)."""
    exec_tool("ctr", list(args))


def register(group: click.Group) -> None:
    for cmd in (kubectl, helm, ctr):
        group.add_command(cmd)
