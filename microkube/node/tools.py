"""kubectl, ctr and helm, preconfigured for this node: the process is replaced by the tool.

Kept free of click, YAML and TLS imports: ``microkube kubectl`` should cost little more
than kubectl itself.
"""

from __future__ import annotations

import os

from microkube.errors import MicrokubeError
from microkube.paths import Paths


def tool_environment(name: str, paths: Paths) -> dict[str, str]:
    """The variables ``name`` (kubectl, helm or ctr) runs with, beyond the caller's:
    containerd's socket and namespace (k8s.io unless CONTAINERD_NAMESPACE is set) for ctr;
    for kubectl and helm the admin kubeconfig unless KUBECONFIG is set, and then kubectl's
    discovery cache under the node's root (unless KUBECACHEDIR is set; a user's own
    KUBECONFIG keeps kubectl's own default, ~/.kube/cache)."""
    if name == "ctr":
        return {"CONTAINERD_ADDRESS": str(paths.containerd_socket),
                "CONTAINERD_NAMESPACE": os.environ.get("CONTAINERD_NAMESPACE", "k8s.io")}
    if "KUBECONFIG" in os.environ:
        return {}
    return {"KUBECONFIG": str(paths.kubeconfig("admin")),
            "KUBECACHEDIR": os.environ.get("KUBECACHEDIR", str(paths.kubectl_cache_dir))}


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

    Raises NotSetUpError/NotRunningError when the node the tool would talk to is not there,
    MicrokubeError when the tool's binary is missing.
    """
    paths = Paths.from_env()
    _require_node(name, paths)
    path = paths.binary(name)
    if not path.exists():
        raise MicrokubeError(f"{path} is missing; build it with 'make components'")
    env = {**os.environ, **tool_environment(name, paths)}
    env["PATH"] = f"{paths.bin_dir}{os.pathsep}{env.get('PATH', '')}"
    os.execve(path, [name, *argv], env)
