"""Whether a node exists and runs, checked before a command that needs one.

Every verb and passthrough that talks to the node asks here first, so a node
that was never set up, or is stopped, gets the same one line everywhere
instead of a tool's own "connection refused".
"""

from __future__ import annotations

from microkube.errors import NotRunningError, NotSetUpError
from microkube.paths import Paths

NOT_SET_UP_MESSAGE = ("microkube is not set up on this node yet; "
                      "set it up and start it with 'microkube start'")
NOT_RUNNING_MESSAGE = "microkube is not running; start it with 'microkube start'"


def is_set_up(paths: Paths) -> bool:
    """True once ``start`` (or the snap's install hook) wrote the settings and admin credentials,
    or ``join --worker`` wrote a worker's settings and kubelet credentials."""
    return paths.state_file.is_file() and (paths.kubeconfig("admin").is_file()
                                           or paths.kubeconfig("kubelet").is_file())


def require_set_up(paths: Paths) -> None:
    """Raise NotSetUpError (one line, exit 3) for a node that was never set up."""
    if not is_set_up(paths):
        raise NotSetUpError(NOT_SET_UP_MESSAGE)


def require_api_answering(paths: Paths) -> None:
    """Raise unless the node is set up and its API server accepts connections on loopback.

    A TCP connect, not a TLS request: ``microkube kubectl`` runs this before every call, and
    ssl, an HTTP exchange and a handshake would cost more than the check is worth (kubectl
    reports a server that accepts but does not answer itself).
    """
    from microkube.probes import tcp_accepts

    require_set_up(paths)
    port = api_port(paths)
    url = f"https://127.0.0.1:{port}"  # NodeConfig.api_url
    if not tcp_accepts("127.0.0.1", port, timeout=2.0):
        raise NotRunningError(f"the API server at {url} does not answer: microkube is not "
                              "running or still starting; see 'microkube status'")


def api_port(paths: Paths) -> int:
    """The node's API port (NodeConfig.api_port), read without YAML where the settings file
    holds it as ``save`` writes it: a top-level ``api_port: N`` line. Anything else (a hand
    edit, a flow mapping) is read by config.node.load, which raises UsageError for a file
    that is broken."""
    try:
        text = paths.state_file.read_text()
    except OSError:
        text = ""
    found = [line.partition(":")[2].strip() for line in text.splitlines()
             if line.startswith("api_port:")]
    if len(found) == 1 and found[0].isdigit():
        return int(found[0])
    from microkube.config import node

    return node.load(paths.state_file).api_port


def require_containerd_answering(paths: Paths) -> None:
    """Raise unless the node is set up and containerd accepts connections on its socket."""
    from microkube.probes import unix_socket_accepts

    require_set_up(paths)
    if not unix_socket_accepts(paths.containerd_socket):
        raise NotRunningError(f"containerd does not answer at {paths.containerd_socket}: "
                              "microkube is not running; start it with 'microkube start'")
