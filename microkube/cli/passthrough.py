"""kubectl, ctr and helm, preconfigured for this node; exit codes pass through."""

from __future__ import annotations

import os

import click

from microkube.errors import MicrokubeError
from microkube.paths import Paths

_PASS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _exec(binary: str, argv: list[str], env: dict[str, str]) -> None:
    paths = Paths.from_env()
    path = paths.binary(binary)
    if not path.exists():
        raise MicrokubeError(f"{path} is missing; build it with 'make components'")
    full_env = {**os.environ, **env}
    full_env["PATH"] = f"{paths.bin_dir}{os.pathsep}{full_env.get('PATH', '')}"
    os.execve(path, [binary, *argv], full_env)


def _admin_env() -> dict[str, str]:
    paths = Paths.from_env()
    return {"KUBECONFIG": os.environ.get("KUBECONFIG", str(paths.kubeconfig("admin")))}


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


_ENV = {"kubectl": _admin_env, "helm": _admin_env}


def _require_node(name: str, paths: Paths) -> None:
    """One line instead of the tool's own 'connection refused' when the node cannot answer.

    kubectl and helm with the user's own KUBECONFIG talk to whatever it names: not checked.
    """
    from microkube.node import guard

    if name == "ctr":
        guard.require_containerd_answering(paths)
    elif "KUBECONFIG" not in os.environ:
        guard.require_api_answering(paths)


def exec_tool(name: str, argv: list[str]) -> None:
    """Replace this process with the named tool (exit codes pass straight through).

    Raises NotSetUpError/NotRunningError when the node the tool would talk to is not there.
    """
    _require_node(name, Paths.from_env())
    if name == "ctr":
        paths = Paths.from_env()
        env = {"CONTAINERD_ADDRESS": str(paths.containerd_socket),
               "CONTAINERD_NAMESPACE": os.environ.get("CONTAINERD_NAMESPACE", "k8s.io")}
    else:
        env = _ENV[name]()
    _exec(name, argv, env)


def register(group: click.Group) -> None:
    for cmd in (kubectl, helm, ctr):
        group.add_command(cmd)
