"""``microkube images``: image archives into and out of containerd's k8s.io namespace."""

from __future__ import annotations

from pathlib import Path

import click

from microkube.paths import Paths


@click.group()
def images() -> None:
    """Import and export container images (OCI archives)."""


@images.command("import")
@click.argument("archives", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(archives: tuple[Path, ...]) -> None:
    """Import OCI or Docker image archives into the node."""
    from microkube.images.importer import import_archives
    from microkube.node.runtime import runtime_for

    paths = Paths.from_env()
    runtime_for(paths).require_running()
    import_archives(paths.binary("ctr"), paths.containerd_socket, list(archives))
    for a in archives:
        click.echo(f"imported {a}")


@images.command("export-local")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_local(directory: Path) -> None:
    """Export every image the node holds into DIRECTORY, one archive each."""
    from microkube.images.importer import export_image, list_images
    from microkube.node.runtime import runtime_for

    paths = Paths.from_env()
    runtime_for(paths).require_running()
    ctr, sock = paths.binary("ctr"), paths.containerd_socket
    for ref in list_images(ctr, sock):
        if ref.startswith("sha256:"):
            continue
        dest = directory / (ref.replace("/", "_").replace(":", "_") + ".tar")
        export_image(ctr, sock, ref, dest)
        click.echo(f"exported {ref} to {dest}")


def register(group: click.Group) -> None:
    group.add_command(images)
