"""The node's PKI: CAs, certificates, kubeconfigs and their renewal.

Everything is ECDSA P-256 (see keys.py for why). The node code calls
:func:`ensure_node_pki` on every start; it is idempotent and cheap.
"""

from microkube.paths import CertKeyPair, PkiPaths
from microkube.pki.ca import CertificateAuthority, create_ca, ensure_ca, load_ca, sign_csr
from microkube.pki.certs import LeafSpec, Usage
from microkube.pki.errors import CsrRefused, PkiError
from microkube.pki.expiry import Expiry, check_expiry
from microkube.pki.hostinfo import host_ips, service_ips
from microkube.pki.kubeconfig import read_kubeconfig, render_kubeconfig
from microkube.pki.node import LEAF_NAMES, PkiReport, ensure_node_pki, refresh
from microkube.pki.profiles import (
    SigningProfile,
    kube_proxy_profile,
    kubelet_client_profile,
    kubelet_serving_profile,
)

__all__ = [
    "LEAF_NAMES",
    "CertKeyPair",
    "CertificateAuthority",
    "CsrRefused",
    "Expiry",
    "LeafSpec",
    "PkiError",
    "PkiPaths",
    "PkiReport",
    "SigningProfile",
    "Usage",
    "check_expiry",
    "create_ca",
    "ensure_ca",
    "ensure_node_pki",
    "host_ips",
    "kube_proxy_profile",
    "kubelet_client_profile",
    "kubelet_serving_profile",
    "load_ca",
    "read_kubeconfig",
    "refresh",
    "render_kubeconfig",
    "service_ips",
    "sign_csr",
]
