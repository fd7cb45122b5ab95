"""The node's daemons, in the order they start (and the reverse of how they stop)."""

from __future__ import annotations

from microkube.config.node import NodeConfig
from microkube.datastore import settings
from microkube.services.apilb import ApiLoadBalancer
from microkube.services.base import Daemon
from microkube.services.cluster_agent import ClusterAgent
from microkube.services.containerd import Containerd
from microkube.services.etcd import Etcd
from microkube.services.kine import Kine
from microkube.services.kubernetes import Kubelite, WorkerKubelite


def datastore_daemons(kind: str) -> list[Daemon]:
    """The local datastore daemon of a node whose datastore is ``kind``: etcd, kine, or
    none at all for an external etcd cluster."""
    if kind == settings.ETCD:
        return [Etcd()]
    if kind in settings.KINE_KINDS:
        return [Kine()]
    return []


def control_plane_daemons(datastore: str = settings.ETCD) -> list[Daemon]:
    """A control-plane node's daemons, in start order, for its datastore kind."""
    return [*datastore_daemons(datastore), Containerd(), Kubelite(), ClusterAgent()]


def all_daemons() -> list[Daemon]:
    """Every daemon any node may run, once each (the snap has one app per daemon)."""
    found: dict[str, Daemon] = {}
    for kind in settings.KINDS:
        for d in control_plane_daemons(kind):
            found.setdefault(d.name, d)
    for d in worker_daemons():
        found.setdefault(d.name, d)
    return list(found.values())


def worker_daemons() -> list[Daemon]:
    """What a worker runs: pods, their network and its policies, against the cluster's API
    servers through its own load balancer on loopback (services/apilb.py).

    No datastore, no API server, no agent: a worker holds no cluster secret. Its kubelite
    runs the pod network and the policy controller as parts (services/kubernetes.py).
    """
    return [ApiLoadBalancer(), Containerd(), WorkerKubelite()]


def daemons_for(node: NodeConfig) -> list[Daemon]:
    """The daemons of a node with the settings ``node``, by its role and datastore (whether
    it enforces NetworkPolicy decides a part of kubelite: Kubelite.parts_for)."""
    return worker_daemons() if node.is_worker else control_plane_daemons(node.datastore)


def by_name(name: str, node: NodeConfig | None = None) -> Daemon:
    """The daemon called ``name`` on a node with the settings ``node`` (any node's when
    None); KeyError if there is none."""
    for d in (all_daemons() if node is None else daemons_for(node)):
        if d.name == name:
            return d
    raise KeyError(name)


def daemon_running(name: str) -> str:
    """The daemon that runs ``name``: itself, or kubelite for one of kubelite's parts
    (kube-apiserver, kubelet...), so callers may keep naming what they mean to restart.

    Raises KeyError for a name that is neither a daemon nor a part.
    """
    for d in all_daemons():
        if d.name == name or name in d.parts:
            return d.name
    raise KeyError(name)


API_SERVER = "kube-apiserver"


def api_server() -> str:
    """The name of the Kubernetes API server: its argument file's name, and what to restart
    (``restart_daemon`` restarts kubelite, which runs it) so it loads a new encryption key."""
    return API_SERVER
