"""What a control plane does to admit a worker: refuse a name or address already in use, and
sign the worker's certificate requests with the restricted profiles.

A worker sends four PEM certificate requests, one per credential it needs
(:data:`WORKER_CSRS`); each is signed only if its profile allows exactly what it
asks: the kubelet's as ``system:node:<its own name>`` in ``system:nodes``,
kube-proxy's as ``system:kube-proxy``, flannel's as ``flannel``. Nothing a
worker receives lets it sign, act as another node, or reach the datastore.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from microkube.errors import MicrokubeError
from microkube.paths import Paths

if TYPE_CHECKING:
    # The signing code loads cryptography; the agent imports it only when a join needs it.
    from microkube.pki.ca import CertificateAuthority
    from microkube.pki.profiles import SigningProfile

# The credentials a worker asks for, by the key its join request names them with.
WORKER_CSRS = ("kubelet", "kubelet-serving", "kube-proxy", "flannel")
# The hint every "already a member" refusal carries.
REMOVE_HINT = "remove it first with 'microkube remove-node {name} --force' on a control plane"


class MemberConflict(MicrokubeError):
    """The joiner's name or address belongs to a node of the cluster already."""


def worker_profiles(name: str) -> dict[str, SigningProfile]:
    """The profile each of a worker's requests is signed with; the node name is fixed to ``name``."""
    from microkube.pki.profiles import (
        flannel_profile,
        kube_proxy_profile,
        kubelet_client_profile,
        kubelet_serving_profile,
    )

    return {
        "kubelet": kubelet_client_profile(name),
        "kubelet-serving": kubelet_serving_profile(name),
        "kube-proxy": kube_proxy_profile(),
        "flannel": flannel_profile(),
    }


def sign_worker_csrs(ca: CertificateAuthority, name: str,
                     csrs: Mapping[str, str]) -> dict[str, str]:
    """Sign worker ``name``'s requests (PEM text by :data:`WORKER_CSRS` key); returns PEM certificates.

    Raises CsrRefused (naming the credential) if any request asks for more than
    its profile allows; then nothing is signed.
    """
    from microkube.pki.ca import sign_csr
    from microkube.pki.certs import cert_pem
    from microkube.pki.errors import CsrRefused

    profiles = worker_profiles(name)
    signed = {}
    for kind in WORKER_CSRS:
        try:
            cert = sign_csr(ca, csrs[kind].encode(), profiles[kind])
        except CsrRefused as e:
            raise CsrRefused(f"{kind}: {e}") from None
        signed[kind] = cert_pem(cert).decode()
    return signed


def node_addresses(node: Mapping[str, Any]) -> set[str]:
    """The InternalIP and ExternalIP addresses a Node object reports."""
    addresses = node.get("status", {}).get("addresses") or []
    return {a.get("address", "") for a in addresses
            if isinstance(a, dict) and a.get("type") in ("InternalIP", "ExternalIP")}


def member_conflict(nodes: Sequence[Mapping[str, Any]], name: str, ip: str) -> str | None:
    """Why ``name`` at ``ip`` cannot join a cluster with these Node objects, or None if it can."""
    for node in nodes:
        existing = str(node.get("metadata", {}).get("name", ""))
        if existing == name:
            return f"a node named {name} is already a member; " + REMOVE_HINT.format(name=name)
        if ip in node_addresses(node):
            return (f"node {existing} already has the address {ip}; "
                    + REMOVE_HINT.format(name=existing))
    return None


@dataclass(frozen=True)
class ControlPlane:
    """What the agent needs of the control plane it runs on to admit a worker.

    ``ca`` loads the cluster CA (key included) for one join; ``nodes`` lists the
    Node objects (raises MicrokubeError when the API server does not answer);
    ``api_server`` is the URL workers reach the API server at.
    """

    ca: Callable[[], CertificateAuthority]
    nodes: Callable[[], list[dict[str, Any]]]
    api_server: str


def control_plane_of(paths: Paths, node_ip: str, api_port: int) -> ControlPlane:
    """The control plane under ``paths``, whose API server workers reach at ``node_ip``:``api_port``."""
    from microkube.kube.api import KubeApi

    def ca() -> CertificateAuthority:
        from microkube.pki.ca import load_ca  # cryptography: loaded by the first join only

        return load_ca(paths.pki.ca)

    def nodes() -> list[dict[str, Any]]:
        doc = KubeApi.for_admin(paths, timeout=5.0).get("/api/v1/nodes")
        if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
            raise MicrokubeError("the API server did not list the cluster's nodes")
        return list(doc["items"])

    host = f"[{node_ip}]" if ":" in node_ip else node_ip
    return ControlPlane(ca=ca, nodes=nodes,
                        api_server=f"https://{host}:{api_port}")
