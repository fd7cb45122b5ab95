"""The list of command modules: each exposes ``register(group)``."""

from __future__ import annotations

import importlib

import click

# One module per verb group; a module adds its commands to the group.
MODULES = (
    "microkube.cli.node",
    "microkube.cli.passthrough",
    "microkube.cli.images",
    "microkube.cli.certs",
    "microkube.cli.version",
    "microkube.cli.addons",
    "microkube.cli.datastore",
    "microkube.cli.cluster",
)


def register(group: click.Group) -> None:
    for name in MODULES:
        importlib.import_module(name).register(group)
