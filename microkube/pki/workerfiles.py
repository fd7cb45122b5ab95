"""A worker's credential files: their names, and pointing its kubeconfigs at its load balancer.

Apart from pki/worker.py, which makes keys and certificate requests, so that this
imports no cryptography: the supervisor calls :func:`point_kubeconfigs` at each
start of a worker's load balancer (services/apilb.py) and would otherwise keep
cryptography (~10 MB PSS) for the node's lifetime.
"""

from __future__ import annotations

from microkube.fsutil import write_private
from microkube.paths import PkiPaths
from microkube.pki.kubeconfig import read_kubeconfig, render_kubeconfig

# Kubeconfig file stem by credential; the kubelet's serving pair is a .crt/.key pair.
KUBECONFIGS = {"kubelet": "kubelet", "kube-proxy": "proxy", "flannel": "flannel", "netpol": "netpol"}
SERVING = "kubelet-serving"
KINDS = ("kubelet", SERVING, "kube-proxy", "flannel", "netpol")
# The file each credential is kept in, by the names reports and ``refresh-certs`` use.
FILES = {SERVING: "kubelet.crt", **{kind: f"{stem}.config" for kind, stem in KUBECONFIGS.items()}}


def point_kubeconfigs(pki: PkiPaths, server: str) -> list[str]:
    """Make the worker's kubeconfigs name ``server`` (its load balancer's URL); returns the
    paths rewritten. A worker that joined before it had a load balancer named its control
    plane there; its credentials are kept as they are. Missing files are left alone.

    Raises PkiError for a kubeconfig that cannot be read.
    """
    rewritten = []
    for stem in KUBECONFIGS.values():
        path = pki.kubeconfig(stem)
        if not path.exists():
            continue
        info = read_kubeconfig(path)
        ca, cert, key = info.ca_pem, info.cert_pem, info.key_pem
        if info.server == server or ca is None or cert is None or key is None:
            continue
        write_private(path, render_kubeconfig(server=server, ca=ca, user=stem, cert=cert, key=key))
        rewritten.append(str(path))
    return rewritten
