"""The node's daemons, in the order they start (and the reverse of how they stop)."""

from __future__ import annotations

from microkube.config.node import NodeConfig
from microkube.services.base import Daemon
from microkube.services.cluster_agent import ClusterAgent
from microkube.services.containerd import Containerd
from microkube.services.etcd import Etcd
from microkube.services.flannel import Flanneld
from microkube.services.kubernetes import Kubelite, WorkerKubelite
from microkube.services.manifests import ManifestDeployer


def control_plane_daemons() -> list[Daemon]:
    """A control-plane node's daemons, in start order."""
    return [Etcd(), Containerd(), Kubelite(), Flanneld(), ClusterAgent(), ManifestDeployer()]


def worker_daemons() -> list[Daemon]:
    """What a worker runs: pods and their network, against a control plane's API server.

    No datastore, no API server, no agent: a worker holds no cluster secret.
    """
    return [Containerd(), WorkerKubelite(), Flanneld()]


def daemons_for(node: NodeConfig) -> list[Daemon]:
    """The daemons of a node with the settings ``node``, by its role."""
    return worker_daemons() if node.is_worker else control_plane_daemons()


def by_name(name: str, node: NodeConfig | None = None) -> Daemon:
    """The daemon called ``name`` on a node with the settings ``node`` (a control plane's
    when None); KeyError if there is none."""
    for d in (control_plane_daemons() if node is None else daemons_for(node)):
        if d.name == name:
            return d
    raise KeyError(name)


def daemon_running(name: str) -> str:
    """The daemon that runs ``name``: itself, or kubelite for one of kubelite's parts
    (kube-apiserver, kubelet...), so callers may keep naming what they mean to restart.

    Raises KeyError for a name that is neither a daemon nor a part.
    """
    for d in control_plane_daemons():
        if d.name == name or name in d.parts:
            return d.name
    raise KeyError(name)


API_SERVER = "kube-apiserver"


def api_server() -> str:
    """The name of the Kubernetes API server: its argument file's name, and what to restart
    (``restart_daemon`` restarts kubelite, which runs it) so it loads a new encryption key."""
    return API_SERVER
