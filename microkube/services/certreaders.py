"""Which daemons must restart to load a renewed certificate or kubeconfig.

Renewal must never stop the workloads: containerd reads no certificate, so it and
the pods keep running; kubelite restarts for the files its parts read at start (the
kubelet's pods survive a kubelet restart). A file read afresh at every use needs no
restart:

- ``admin.config``: the manifest deployer runs kubectl for each pass, the cluster
  agent builds an API client per request, ``status`` reads it per run; kubelite uses
  it only while it starts its parts (to ask the API server's /readyz).
- ``etcd/server.crt``: etcd reads its certificate and key at every TLS handshake
  (etcd ``client/pkg/transport/listener.go``, ``TLSInfo.ServerConfig``'s
  ``GetCertificate``/``GetClientCertificate``; "TLS certificates get reloaded on
  every client connection" since v3.2, etcd's security guide). kine loads it once.

Files are named as the PKI reports name them: relative to the certs directory
(``server.crt``, ``etcd/server.crt``) or a kubeconfig's file name (``kubelet.config``).
A ``.key`` counts as its ``.crt``. A file this table does not know restarts every
daemon but containerd, to be safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from microkube.services.apilb import NAME as APILB
from microkube.services.cluster_agent import ClusterAgent
from microkube.services.containerd import Containerd
from microkube.services.etcd import Etcd
from microkube.services.kine import Kine
from microkube.services.kubernetes import Kubelite

KUBELITE = Kubelite.name
# The daemons that read each file at start (or keep it loaded), by file name.
READERS: dict[str, tuple[str, ...]] = {
    # The apiserver's --client-ca-file, the kubelet's clientCAFile, the controller-manager's
    # root CA and signing pair; the agent serves and verifies clients with it; apilb checks
    # the API servers against it.
    "ca.crt": (KUBELITE, ClusterAgent.name, APILB),
    "front-proxy-ca.crt": (KUBELITE,),
    # The datastore's trusted CA is loaded once, also by etcd.
    "etcd/ca.crt": (Etcd.name, Kine.name, KUBELITE),
    "serviceaccount.pub": (KUBELITE,),
    "server.crt": (KUBELITE,),
    "kubelet.crt": (KUBELITE,),
    "apiserver-kubelet-client.crt": (KUBELITE,),
    "front-proxy-client.crt": (KUBELITE,),
    "etcd/server.crt": (Kine.name,),
    "etcd/apiserver-client.crt": (KUBELITE,),
    "cluster-agent.crt": (ClusterAgent.name,),
    "admin.config": (),
    "controller.config": (KUBELITE,),
    "scheduler.config": (KUBELITE,),
    "kubelet.config": (KUBELITE,),
    # apilb loads kube-proxy's credential once, for its health checks and server list.
    "proxy.config": (KUBELITE, APILB),
    # kubelite's flanneld and netpol parts.
    "flannel.config": (KUBELITE,),
    "netpol.config": (KUBELITE,),
}
# Reads no certificate: it, and the pods it runs, never restart for a renewal.
NEVER_RESTARTED = (Containerd.name,)


def readers(name: str) -> tuple[str, ...] | None:
    """The daemons that read file ``name`` (a ``.key`` counts as its ``.crt``); None if the
    table does not know it."""
    if name.endswith(".key"):
        name = name.removesuffix(".key") + ".crt"
    return READERS.get(name)


def daemons_to_restart(changed: Iterable[str], running: Sequence[str]) -> dict[str, list[str]]:
    """Which of the ``running`` daemons (names, in start order) must restart to load the
    ``changed`` files, each with the files that make it restart (sorted).

    Returns daemon name -> files, in the order of ``running``; empty when nothing needs
    a restart. A file the table does not know restarts every running daemon but
    containerd.
    """
    why: dict[str, set[str]] = {}
    for name in changed:
        found = readers(name)
        targets = [d for d in running if d not in NEVER_RESTARTED] if found is None else found
        for daemon in targets:
            why.setdefault(daemon, set()).add(name)
    return {d: sorted(why[d]) for d in running if d in why}
