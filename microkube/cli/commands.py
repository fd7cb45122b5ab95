"""The verbs and the command module that defines each: a module exposes ``register(group)``.

The group imports a verb's module only when the verb runs (or ``--help`` lists them all),
so ``microkube status`` pays for one command module, not eight. A unit test checks that
VERBS names exactly what the modules register.
"""

from __future__ import annotations

import importlib

import click

# One module per verb group; a module adds its commands to the group.
VERBS = {
    **dict.fromkeys(("start", "stop", "status", "config", "reset", "inspect"), "microkube.cli.node"),
    **dict.fromkeys(("kubectl", "helm", "ctr"), "microkube.cli.passthrough"),
    "images": "microkube.cli.images",
    "refresh-certs": "microkube.cli.certs",
    "version": "microkube.cli.version",
    **dict.fromkeys(("enable", "disable", "addons"), "microkube.cli.addons"),
    **dict.fromkeys(("dbctl", "secrets-encryption"), "microkube.cli.datastore"),
    **dict.fromkeys(("add-node", "join", "leave", "remove-node"), "microkube.cli.cluster"),
}
MODULES = tuple(dict.fromkeys(VERBS.values()))


def load(group: click.Group, name: str) -> click.Command | None:
    """The command ``name`` of ``group``, importing and registering its module first if
    needed; None for a name that is no verb."""
    if name not in group.commands and name in VERBS:
        importlib.import_module(VERBS[name]).register(group)
    return group.commands.get(name)


def register(group: click.Group) -> None:
    """Register every verb now (callers that want the whole group built)."""
    for name in MODULES:
        importlib.import_module(name).register(group)
