"""A worker's credentials: keys made on the worker, requests a control plane signs, files it keeps.

The worker makes one key per credential and sends only certificate requests;
the keys never leave it. What it keeps is the cluster CA's certificate (no
key), the kubelet's serving certificate, and four kubeconfigs (kubelet,
kube-proxy, flannel, netpol) that point at the worker's API load balancer on
loopback (NodeConfig.api_url), which passes TLS through to the API servers.
Their names, and moving the kubeconfigs onto that balancer, are in pki/workerfiles.py.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from microkube.fsutil import write_atomic, write_private
from microkube.paths import PkiPaths
from microkube.pki.errors import PkiError
from microkube.pki.keys import PrivateKey, new_key, private_pem
from microkube.pki.kubeconfig import read_kubeconfig, render_kubeconfig
from microkube.pki.profiles import NODE_PREFIX, NODES_GROUP
from microkube.pki.workerfiles import FILES, KINDS, KUBECONFIGS, SERVING


@dataclass(frozen=True)
class WorkerRequest:
    """Fresh keys for a worker and the PEM certificate requests for them, by credential name."""

    keys: dict[str, PrivateKey]
    csrs: dict[str, str]


def _csr(key: PrivateKey, common_name: str, organizations: tuple[str, ...] = (),
         names: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> str:
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    subject += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if names or ips:
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def worker_request(node_name: str, node_ip: str, hostname: str,
                   kinds: tuple[str, ...] = KINDS) -> WorkerRequest:
    """Keys and requests for worker ``node_name`` at ``node_ip`` (its host name ``hostname``),
    for the credentials ``kinds`` (all five unless given: a renewal asks for those due)."""
    keys: dict[str, PrivateKey] = {kind: new_key() for kind in kinds}
    user = NODE_PREFIX + node_name
    names = tuple(dict.fromkeys([node_name, hostname.lower()]))
    subjects: dict[str, tuple[str, tuple[str, ...]]] = {
        "kubelet": (user, (NODES_GROUP,)), SERVING: (user, (NODES_GROUP,)),
        "kube-proxy": ("system:kube-proxy", ()), "flannel": ("flannel", ()),
        "netpol": ("netpol", ()),
    }
    csrs = {}
    for kind in kinds:
        cn, orgs = subjects[kind]
        if kind == SERVING:
            csrs[kind] = _csr(keys[kind], cn, orgs, names, ("127.0.0.1", node_ip))
        else:
            csrs[kind] = _csr(keys[kind], cn, orgs)
    return WorkerRequest(keys, csrs)


def write_worker_credentials(pki: PkiPaths, request: WorkerRequest, certificates: dict[str, str],
                             ca_pem: bytes, api_server: str) -> list[str]:
    """Write the worker's CA certificate, serving pair and kubeconfigs; returns the paths written.

    ``certificates`` are the PEM certificates the control plane signed, by
    credential name; ``api_server`` is the URL the kubeconfigs name (the node's load
    balancer, ``NodeConfig.api_url``). Keys and kubeconfigs are 0600; the CA is its
    certificate only.
    """
    for d in (pki.certs_dir, pki.credentials_dir):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    write_atomic(pki.ca.cert, ca_pem, 0o644)
    written.append(str(pki.ca.cert))
    for kind in KINDS:
        written += _write_credential(pki, kind, request.keys[kind], certificates[kind], ca_pem,
                                     api_server)
    return written


def _write_credential(pki: PkiPaths, kind: str, key: PrivateKey, cert: str, ca_pem: bytes,
                      api_server: str) -> list[str]:
    """Write one credential (the serving pair, key first, or a kubeconfig); its paths."""
    if kind == SERVING:
        serving = pki.kubelet
        write_private(serving.key, private_pem(key))
        write_atomic(serving.cert, cert.encode(), 0o644)
        return [str(serving.key), str(serving.cert)]
    stem = KUBECONFIGS[kind]
    path = pki.kubeconfig(stem)
    write_private(path, render_kubeconfig(server=api_server, ca=ca_pem, user=stem,
                                          cert=cert.encode(), key=private_pem(key)))
    return [str(path)]


def write_renewed(pki: PkiPaths, request: WorkerRequest, certificates: dict[str, str],
                  default_server: str) -> list[str]:
    """Write the renewed credentials of ``request`` (``certificates``: PEM by credential);
    returns their names (``kubelet.crt``, ``proxy.config``).

    A kubeconfig keeps the API server it names (a node-local load balancer may have
    changed it since the join), else ``default_server``; every one keeps trusting the
    node's CA file. Raises PkiError if the CA file cannot be read.
    """
    ca_pem = _read_ca(pki)
    for kind in request.keys:
        server = default_server
        if kind != SERVING:
            with contextlib.suppress(PkiError):
                server = read_kubeconfig(pki.kubeconfig(KUBECONFIGS[kind])).server or server
        _write_credential(pki, kind, request.keys[kind], certificates[kind], ca_pem, server)
    return sorted(FILES[kind] for kind in request.keys)


def _read_ca(pki: PkiPaths) -> bytes:
    try:
        return pki.ca.cert.read_bytes()
    except OSError as e:
        raise PkiError(f"cannot read {pki.ca.cert}: {e.strerror}") from None
