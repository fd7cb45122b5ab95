"""Node lifecycle verbs: start, stop, status, reset, config, inspect."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from microkube.cli import statuscmd
from microkube.paths import Paths


def _progress(line: str) -> None:
    click.echo(line, err=True)


@click.command()
@click.option("--wait-ready", is_flag=True, help="Wait until the node is Ready.")
@click.option("--timeout", default=120, show_default=True, help="Seconds --wait-ready waits.")
@click.option("--config", "launch_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A launch configuration (YAML) for the node's first start.")
def start(wait_ready: bool, timeout: int, launch_file: Path | None) -> None:
    """Start the node."""
    from microkube.addons.launch import apply_pending_addons
    from microkube.cluster.launchjoin import join_from_launch
    from microkube.config.launch import pending_addons
    from microkube.node import status
    from microkube.node.runtime import runtime_for
    from microkube.node.setup import prepare

    paths = Paths.from_env()
    # A launch file with `join`: the node joins (and runs) instead of forming its own cluster.
    joined = join_from_launch(paths, launch_file, _progress)
    if joined is not None:
        click.echo(joined)  # the join started the node and waited until it was Ready
    elif launch_file is not None:
        prepare(paths, launch_file)  # checked and written before anything starts
    if joined is None and not runtime_for(paths).start(_progress):
        click.echo("microkube is already running")
    elif joined is None and (note := status.quorum_note(paths)):
        _progress(note)  # not a failure: the node serves once its peers are up
    if wait_ready or pending_addons(paths):
        status.wait_ready(paths, timeout, _progress)
        click.echo("microkube is ready")
    if pending_addons(paths):
        done = apply_pending_addons(paths, lambda text: click.echo(text, nl=False))
        click.echo(f"launch configuration: {', '.join(done)} done")


@click.command()
def stop() -> None:
    """Stop the node and every container on it."""
    from microkube.node.runtime import runtime_for

    if runtime_for(Paths.from_env()).stop(_progress):
        click.echo("microkube stopped")
    else:
        click.echo("microkube is not running")


@click.command()
@click.option("--format", "fmt", type=click.Choice(statuscmd.FORMATS),
              default=statuscmd.DEFAULT_FORMAT, show_default=True)
@click.option("--wait-ready", is_flag=True, help="Wait until the node is Ready.")
@click.option("--timeout", default=statuscmd.DEFAULT_TIMEOUT, show_default=True,
              help="Seconds --wait-ready waits.")
def status(fmt: str, wait_ready: bool, timeout: int) -> None:
    """Show whether the node runs and is Ready, and which addons are enabled.

    Prints in every state; exits 3 if microkube is not running (1 if --wait-ready timed out).
    """
    code = statuscmd.show_status(fmt, wait_ready, timeout)
    if code:
        sys.exit(code)


@click.command()
@click.option("-l", "--loopback", is_flag=True, help="Use 127.0.0.1 as the API server address.")
def config(loopback: bool) -> None:
    """Print the admin kubeconfig."""
    from microkube.node.guard import require_set_up
    from microkube.node.setup import load_context

    paths = Paths.from_env()
    require_set_up(paths)
    ctx = load_context(paths)
    text = paths.kubeconfig("admin").read_text()
    if not loopback:
        text = text.replace(ctx.node.api_url, f"https://{ctx.node.node_ip}:{ctx.node.api_port}")
    click.echo(text, nl=False)


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def reset(yes: bool) -> None:
    """Return to a fresh cluster: all workloads and state go, certificates stay."""
    from microkube.node import reset as node_reset
    from microkube.node.guard import require_set_up

    require_set_up(Paths.from_env())
    if not yes and not click.confirm("This deletes every Kubernetes object on this node. Go on?"):
        raise click.Abort()
    node_reset.reset(Paths.from_env(), _progress)
    click.echo("microkube was reset")


@click.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Where to write the tarball (default: ./inspection-report-<time>.tar.gz).")
def inspect(output: str | None) -> None:
    """Collect logs, arguments, versions and status into a tarball."""
    from microkube.node import inspect as node_inspect

    path = node_inspect.collect(Paths.from_env(), output, _progress)
    click.echo(f"Report tarball is at {path}")


def register(group: click.Group) -> None:
    for cmd in (start, stop, status, config, reset, inspect):
        group.add_command(cmd)


