"""Signing profiles: what a certificate request from another node may ask for.

A profile fixes the subject (an exact common name, or a prefix followed by a
node name) and the exact organisations, says whether names (SANs) may be
requested, and sets the usage and validity itself. Anything else is refused,
so a joining node cannot ask for ``system:masters`` or a serving certificate
for someone else's name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NoReturn

from cryptography import x509
from cryptography.x509.oid import NameOID

from microkube.pki.certs import IPAddress, LeafSpec, Usage
from microkube.pki.errors import CsrRefused
from microkube.pki.names import is_dns1123_subdomain

NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"

# A DNS-1123 subdomain: what Kubernetes accepts as a node name.
@dataclass(frozen=True)
class SigningProfile:
    name: str
    usage: Usage
    organizations: tuple[str, ...]  # the exact set the subject must carry
    common_name: str | None = None  # an exact common name, or ...
    common_name_prefix: str | None = None  # ... a prefix followed by a DNS-1123 name
    allow_sans: bool = False  # serving certificates name themselves; clients do not
    require_sans: bool = False
    validity: dt.timedelta | None = None  # None: pki.lifetime.leaf_validity() at signing

    def check(self, csr: x509.CertificateSigningRequest) -> LeafSpec:
        """The spec to issue for ``csr``; raises CsrRefused if it asks for too much."""
        allowed = {NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME}
        extra = [a.rfc4514_attribute_name for a in csr.subject if a.oid not in allowed]
        if extra:
            self._refuse(f"subject fields not allowed: {', '.join(extra)}")
        cns = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if len(cns) != 1:
            self._refuse("the subject needs exactly one common name")
        cn = cns[0]
        self._check_common_name(cn)
        orgs = [
            str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        ]
        if sorted(orgs) != sorted(self.organizations):
            want = ", ".join(self.organizations) or "none"
            self._refuse(f"organisations {orgs} not allowed (must be exactly: {want})")
        dns_names, ips = self._requested_names(csr)
        return LeafSpec(
            common_name=cn,
            usage=self.usage,
            organizations=self.organizations,
            dns_names=dns_names,
            ip_addresses=ips,
            validity=self.validity,
        )

    def _refuse(self, reason: str) -> NoReturn:
        raise CsrRefused(f"refused by the {self.name} profile: {reason}")

    def _check_common_name(self, cn: str) -> None:
        if self.common_name is not None:
            if cn != self.common_name:
                self._refuse(f"common name {cn!r} not allowed (must be {self.common_name!r})")
            return
        prefix = self.common_name_prefix or ""
        if not cn.startswith(prefix) or not is_dns1123_subdomain(cn[len(prefix) :]):
            self._refuse(f"common name {cn!r} not allowed (must be {prefix}<node name>)")

    def _requested_names(
        self, csr: x509.CertificateSigningRequest
    ) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = x509.SubjectAlternativeName([])
        if len(san) and not self.allow_sans:
            self._refuse("a client certificate may not name hosts (subject alternative names)")
        if not len(san) and self.require_sans:
            self._refuse("a serving certificate needs at least one DNS name or IP address")
        other = [n for n in san if not isinstance(n, x509.DNSName | x509.IPAddress)]
        if other:
            self._refuse("only DNS names and IP addresses may be requested")
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(ip for ip in san.get_values_for_type(x509.IPAddress)
                    if isinstance(ip, IPAddress))
        if len(ips) != len(san.get_values_for_type(x509.IPAddress)):
            self._refuse("IP names must be single addresses, not networks")
        bad = [n for n in dns_names if not is_dns1123_subdomain(n)]
        if bad:
            self._refuse(f"not valid DNS names: {', '.join(bad)}")
        return dns_names, ips


def kubelet_client_profile(node_name: str | None = None) -> SigningProfile:
    """A kubelet's API client certificate: system:node:<name> in system:nodes.

    With ``node_name`` only that node's name is accepted (the join flow knows it).
    """
    return SigningProfile(
        name="kubelet-client",
        usage=Usage.CLIENT,
        organizations=(NODES_GROUP,),
        common_name=None if node_name is None else NODE_PREFIX + node_name,
        common_name_prefix=NODE_PREFIX,
    )


def kubelet_serving_profile(node_name: str | None = None) -> SigningProfile:
    """A kubelet's serving certificate: same subject, names its own addresses."""
    return SigningProfile(
        name="kubelet-serving",
        usage=Usage.SERVER,
        organizations=(NODES_GROUP,),
        common_name=None if node_name is None else NODE_PREFIX + node_name,
        common_name_prefix=NODE_PREFIX,
        allow_sans=True,
        require_sans=True,
    )


def kube_proxy_profile() -> SigningProfile:
    return SigningProfile(
        name="kube-proxy",
        usage=Usage.CLIENT,
        organizations=(),
        common_name="system:kube-proxy",
    )


def flannel_profile() -> SigningProfile:
    """flanneld's API client certificate: the user the bootstrap RBAC names ``flannel``."""
    return SigningProfile(
        name="flannel",
        usage=Usage.CLIENT,
        organizations=(),
        common_name="flannel",
    )


def netpol_profile() -> SigningProfile:
    """The network policy controller's API client certificate: the user the bootstrap RBAC
    names ``netpol`` (it reads pods, namespaces, NetworkPolicies and Nodes)."""
    return SigningProfile(
        name="netpol",
        usage=Usage.CLIENT,
        organizations=(),
        common_name="netpol",
    )
