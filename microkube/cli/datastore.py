"""``microkube dbctl`` (backup, restore) and ``microkube secrets-encryption`` (status, rotate-keys)."""

from __future__ import annotations

from pathlib import Path

import click

from microkube.paths import Paths


def _say(line: str) -> None:
    click.echo(line, err=True)


@click.group("dbctl")
def dbctl() -> None:
    """Back up and restore the node's datastore."""


@dbctl.command("backup")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The backup file (default: microkube-backup-<node>-<time>.tar.gz here).")
def backup(output: Path | None) -> None:
    """Write a consistent backup of the running node's datastore (it holds the Secrets' key)."""
    from microkube.datastore import backup as ops

    result = ops.backup(Paths.from_env(), output)
    click.echo(f"backup written to {result.path} ({result.keys} keys, revision {result.revision}, "
               f"{result.size / 2**20:.1f} MiB); it holds the Secrets' encryption key: "
               "keep it private")


@dbctl.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def restore(file: Path) -> None:
    """Replace the stopped node's datastore with a backup's."""
    from microkube.datastore import backup as ops

    manifest = ops.restore(Paths.from_env(), file, _say)
    click.echo(f"restored the backup of {manifest.created}; start the node with 'microkube start'")


@click.group("secrets-encryption")
def secrets_encryption() -> None:
    """Secrets encrypted at rest: see the keys, rotate them."""


@secrets_encryption.command("status")
def encryption_status() -> None:
    """Say whether Secrets are encrypted, which keys exist and whether a rotation is under way."""
    from microkube.datastore import secrets
    from microkube.node.guard import require_set_up

    paths = Paths.from_env()
    require_set_up(paths)
    for line in secrets.status(paths).lines():
        click.echo(line)


@secrets_encryption.command("rotate-keys")
def rotate_keys() -> None:
    """Encrypt every Secret with a new key and retire the old one (resumes a stopped rotation)."""
    from microkube.datastore import secrets

    name = secrets.rotate_keys(Paths.from_env(), _say)
    click.echo(f"rotated: every Secret is now encrypted with key {name}")


def register(group: click.Group) -> None:
    group.add_command(dbctl)
    group.add_command(secrets_encryption)
