"""What a control plane does to admit a worker: refuse a name or address already in use, and
sign the worker's certificate requests with the restricted profiles.

A worker sends five PEM certificate requests, one per credential it needs
(:data:`WORKER_CSRS`); each is signed only if its profile allows exactly what it
asks: the kubelet's as ``system:node:<its own name>`` in ``system:nodes``,
kube-proxy's as ``system:kube-proxy``, flannel's as ``flannel``, the network policy
controller's as ``netpol``. Nothing a
worker receives lets it sign, act as another node, or reach the datastore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from microkube.errors import MicrokubeError

if TYPE_CHECKING:
    # The signing code loads cryptography; the agent imports it only when a join needs it.
    from microkube.pki.ca import CertificateAuthority
    from microkube.pki.profiles import SigningProfile

# The credentials a worker asks for, by the key its join request names them with.
WORKER_CSRS = ("kubelet", "kubelet-serving", "kube-proxy", "flannel", "netpol")
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
        netpol_profile,
    )

    return {
        "kubelet": kubelet_client_profile(name),
        "kubelet-serving": kubelet_serving_profile(name),
        "kube-proxy": kube_proxy_profile(),
        "flannel": flannel_profile(),
        "netpol": netpol_profile(),
    }


def sign_worker_csrs(ca: CertificateAuthority, name: str,
                     csrs: Mapping[str, str]) -> dict[str, str]:
    """Sign worker ``name``'s requests (PEM text by :data:`WORKER_CSRS` key: all five at a
    join, those due at a renewal); returns PEM certificates by the same keys.

    Raises CsrRefused (naming the credential) if any request asks for more than
    its profile allows, or names a credential a worker does not have; then nothing is
    signed.
    """
    from microkube.pki.ca import sign_csr
    from microkube.pki.certs import cert_pem
    from microkube.pki.errors import CsrRefused

    profiles = worker_profiles(name)
    signed = {}
    unknown = sorted(set(csrs) - set(WORKER_CSRS))
    if unknown:
        raise CsrRefused(f"a worker has no credential named {', '.join(unknown)}")
    for kind in (k for k in WORKER_CSRS if k in csrs):
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
