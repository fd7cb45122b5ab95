"""The node's daemons, in the order they start (and the reverse of how they stop)."""

from __future__ import annotations

from microkube.config.node import NodeConfig
from microkube.services.base import Daemon
from microkube.services.cluster_agent import ClusterAgent
from microkube.services.containerd import Containerd
from microkube.services.etcd import Etcd
from microkube.services.flannel import Flanneld
from microkube.services.kubernetes import (
    KubeApiserver,
    KubeControllerManager,
    Kubelet,
    KubeProxy,
    KubeScheduler,
)


def control_plane_daemons() -> list[Daemon]:
    """Every daemon: what a control-plane node runs."""
    return [Etcd(), Containerd(), KubeApiserver(), KubeControllerManager(), KubeScheduler(),
            Kubelet(), KubeProxy(), Flanneld(), ClusterAgent()]


def worker_daemons() -> list[Daemon]:
    """What a worker runs: pods and their network, against a control plane's API server.

    No datastore, no API server, no agent: a worker holds no cluster secret.
    """
    return [Containerd(), Kubelet(), KubeProxy(), Flanneld()]


def daemons_for(node: NodeConfig) -> list[Daemon]:
    """The daemons of a node with the settings ``node``, by its role."""
    return worker_daemons() if node.is_worker else control_plane_daemons()


def by_name(name: str) -> Daemon:
    for d in control_plane_daemons():
        if d.name == name:
            return d
    raise KeyError(name)


def api_server() -> Daemon:
    """The daemon that serves the Kubernetes API (restarted to load a new encryption key)."""
    return by_name("kube-apiserver")
