"""Everything a control-plane node needs, made or kept by one idempotent call.

``ensure_node_pki`` creates what is missing, keeps what is still right and
re-issues leaves that are not: due for renewal (pki/lifetime.py), not covering the
host's current names and addresses, not matching their key, or not signed by
the current CA. CAs are created once and replaced only by ``rotate_ca`` (a single
node's ``refresh-certs --cert ca.crt``). ``refresh`` re-issues leaves on demand
(``microkube refresh-certs``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cryptography import x509

from microkube.errors import UsageError
from microkube.fsutil import write_atomic, write_private
from microkube.paths import CertKeyPair, PkiPaths
from microkube.pki.ca import CertificateAuthority, ensure_ca
from microkube.pki.certs import (
    IPAddress,
    LeafSpec,
    Usage,
    cert_pem,
    load_cert,
    reissue_reason,
    utcnow,
)
from microkube.pki.errors import PkiError
from microkube.pki.hostinfo import parse_ips, service_ips
from microkube.pki.keys import (
    PrivateKey,
    load_private_key,
    new_key,
    private_pem,
    public_pem,
)
from microkube.pki.kubeconfig import read_kubeconfig, render_kubeconfig
from microkube.pki.names import is_dns1123_subdomain
from microkube.pki.profiles import NODE_PREFIX, NODES_GROUP

LOOPBACK = parse_ips(["127.0.0.1"])

CA_NAMES = {"ca": "microkube-ca", "front-proxy-ca": "microkube-front-proxy-ca",
            "etcd-ca": "microkube-etcd-ca"}

# The leaves, by the name reports and ``refresh(only=...)`` use.
LEAF_NAMES = (
    "server.crt",
    "kubelet.crt",
    "apiserver-kubelet-client.crt",
    "front-proxy-client.crt",
    "etcd/server.crt",
    "etcd/apiserver-client.crt",
    "cluster-agent.crt",
    "admin.config",
    "controller.config",
    "scheduler.config",
    "kubelet.config",
    "proxy.config",
    "flannel.config",
    "netpol.config",
)


@dataclass(frozen=True)
class NodeIdentity:
    """The validated facts that go into this node's certificates."""

    node_name: str
    hostname: str
    host_ips: tuple[IPAddress, ...]
    service_ips: tuple[IPAddress, ...]
    cluster_domain: str
    api_server_url: str

    @classmethod
    def parse(
        cls,
        node_name: str,
        host_ips: Iterable[str | IPAddress],
        hostname: str,
        service_cidr: str,
        cluster_domain: str,
        api_server_url: str,
    ) -> NodeIdentity:
        if not is_dns1123_subdomain(node_name):
            raise UsageError(f"node name {node_name!r} is not a lowercase DNS name")
        host = hostname.lower()
        if not is_dns1123_subdomain(host):
            raise UsageError(f"hostname {hostname!r} is not a valid DNS name")
        if not is_dns1123_subdomain(cluster_domain):
            raise UsageError(f"cluster domain {cluster_domain!r} is not a valid DNS name")
        url = urlsplit(api_server_url)
        if url.scheme != "https" or not url.hostname:
            raise UsageError(f"API server URL {api_server_url!r} must be https://<host>:<port>")
        return cls(
            node_name=node_name,
            hostname=host,
            host_ips=tuple(_unique(parse_ips(host_ips))),
            service_ips=tuple(service_ips(service_cidr)),
            cluster_domain=cluster_domain,
            api_server_url=api_server_url,
        )

    def api_server_dns_names(self) -> tuple[str, ...]:
        # kubernetes.default.svc.<each prefix of the domain>: cluster, cluster.local
        labels = self.cluster_domain.split(".")
        svc = [f"kubernetes.default.svc.{'.'.join(labels[:i])}" for i in range(1, len(labels) + 1)]
        names = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", *svc,
                 self.hostname, self.node_name, "localhost"]
        return tuple(_unique(names))


T = TypeVar("T")


def _unique(items: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class _Leaf:
    name: str
    issuer: str  # a key of CA_NAMES
    spec: LeafSpec
    target: CertKeyPair | Path  # a .crt + .key pair, or a kubeconfig embedding both


def _leaves(paths: PkiPaths, node: NodeIdentity) -> list[_Leaf]:
    ips = tuple(_unique([*LOOPBACK, *node.service_ips, *node.host_ips]))
    node_ips = tuple(_unique([*LOOPBACK, *node.host_ips]))
    own_names = tuple(_unique([node.node_name, node.hostname]))
    node_user = NODE_PREFIX + node.node_name
    files = [
        ("server.crt", "ca", paths.server,
         LeafSpec("kube-apiserver", Usage.SERVER, (), node.api_server_dns_names(), ips)),
        ("kubelet.crt", "ca", paths.kubelet,
         LeafSpec(node_user, Usage.SERVER, (NODES_GROUP,), own_names, node_ips)),
        ("apiserver-kubelet-client.crt", "ca", paths.apiserver_kubelet_client,
         LeafSpec("kube-apiserver-kubelet-client", Usage.CLIENT, ("system:masters",))),
        ("front-proxy-client.crt", "front-proxy-ca", paths.front_proxy_client,
         LeafSpec("front-proxy-client", Usage.CLIENT)),
        ("etcd/server.crt", "etcd-ca", paths.etcd_server,
         LeafSpec(node.node_name, Usage.PEER, (), (*own_names, "localhost"), node_ips)),
        ("etcd/apiserver-client.crt", "etcd-ca", paths.etcd_apiserver_client,
         LeafSpec("kube-apiserver-etcd-client", Usage.CLIENT)),
        # Joiners reach the agent by any of the node's addresses and trust only the CA.
        ("cluster-agent.crt", "ca", paths.cluster_agent,
         LeafSpec("microkube-cluster-agent", Usage.SERVER, (), (*own_names, "localhost"), node_ips)),
    ]
    users = [
        ("admin", LeafSpec("admin", Usage.CLIENT, ("system:masters",))),
        ("controller", LeafSpec("system:kube-controller-manager", Usage.CLIENT)),
        ("scheduler", LeafSpec("system:kube-scheduler", Usage.CLIENT)),
        ("kubelet", LeafSpec(node_user, Usage.CLIENT, (NODES_GROUP,))),
        ("proxy", LeafSpec("system:kube-proxy", Usage.CLIENT)),
        ("flannel", LeafSpec("flannel", Usage.CLIENT)),
        ("netpol", LeafSpec("netpol", Usage.CLIENT)),
    ]
    leaves = [_Leaf(name, issuer, spec, pair) for name, issuer, pair, spec in files]
    leaves += [
        _Leaf(f"{user}.config", "ca", spec, paths.kubeconfig(user))
        for user, spec in users
    ]
    return leaves


@dataclass
class PkiReport:
    """What one run did, by short file name (``server.crt``, ``etcd/ca.crt``, ``admin.config``)."""

    paths: PkiPaths
    created: list[str] = field(default_factory=list)
    renewed: dict[str, str] = field(default_factory=dict)  # name -> why
    kept: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.renewed)

    def lines(self) -> list[str]:
        out = [f"created {name}" for name in self.created]
        out += [f"renewed {name}: {why}" for name, why in self.renewed.items()]
        return out

    def _done(self, name: str, reason: str | None) -> None:
        if reason is None:
            self.kept.append(name)
        elif reason == "missing":
            self.created.append(name)
        else:
            self.renewed[name] = reason


def ensure_node_pki(
    certs_dir: Path,
    credentials_dir: Path,
    node_name: str,
    host_ips: Iterable[str | IPAddress],
    hostname: str,
    service_cidr: str,
    cluster_domain: str,
    api_server_url: str,
    *,
    now: dt.datetime | None = None,
) -> PkiReport:
    """Make this control-plane node's PKI complete and current; see the module doc."""
    node = NodeIdentity.parse(
        node_name, host_ips, hostname, service_cidr, cluster_domain, api_server_url
    )
    return _reconcile(PkiPaths(certs_dir, credentials_dir), node, frozenset(), now)


def refresh(
    certs_dir: Path,
    credentials_dir: Path,
    node_name: str,
    host_ips: Iterable[str | IPAddress],
    hostname: str,
    service_cidr: str,
    cluster_domain: str,
    api_server_url: str,
    *,
    only: Collection[str] | None = None,
    now: dt.datetime | None = None,
) -> PkiReport:
    """Re-issue leaf certificates now (all, or those named in ``only``); never a CA."""
    wanted = frozenset(LEAF_NAMES if only is None else only)
    unknown = sorted(wanted - set(LEAF_NAMES))
    if unknown:
        raise UsageError(
            f"cannot refresh {', '.join(unknown)}: choose from {', '.join(LEAF_NAMES)} "
            "(or ca.crt alone, to rotate a single node's CA)"
        )
    node = NodeIdentity.parse(
        node_name, host_ips, hostname, service_cidr, cluster_domain, api_server_url
    )
    return _reconcile(PkiPaths(certs_dir, credentials_dir), node, wanted, now)


def rotate_ca(certs_dir: Path, credentials_dir: Path, *, now: dt.datetime | None = None,
              **identity: Any) -> PkiReport:
    """Replace the cluster CA (``ca.crt``: a new key and certificate) and re-issue every leaf
    and kubeconfig; the front-proxy and etcd CAs and the service-account key stay, so
    service-account tokens stay valid. ``identity``: the node's other keyword arguments of
    :func:`ensure_node_pki` (node_name, host_ips, ...), checked before anything is written.

    Only for a node alone in its cluster: the caller checks. A crash midway is repaired
    by the next ``ensure_node_pki``, which re-issues every leaf the new CA did not sign.
    """
    from microkube.pki.ca import create_ca, write_ca

    NodeIdentity.parse(**identity)  # UsageError for bad settings, before the CA goes
    paths = PkiPaths(certs_dir, credentials_dir)
    with _locked(paths):
        write_ca(paths.ca, create_ca(CA_NAMES["ca"], now=now))
    report = refresh(certs_dir, credentials_dir, **identity, now=now)
    report.renewed = {paths.display_name(paths.ca.cert): "CA rotated", **report.renewed}
    return report


@contextlib.contextmanager
def _locked(paths: PkiPaths) -> Iterator[None]:
    """One reconcile at a time, so two callers never race to create a CA."""
    for d in (paths.certs_dir, paths.etcd_dir, paths.credentials_dir):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(d, 0o700)
    fd = os.open(paths.certs_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _reconcile(
    paths: PkiPaths, node: NodeIdentity, force: frozenset[str], now: dt.datetime | None
) -> PkiReport:
    now = now or utcnow()
    report = PkiReport(paths)
    with _locked(paths):
        cas: dict[str, CertificateAuthority] = {}
        for issuer, pair in (("ca", paths.ca), ("front-proxy-ca", paths.front_proxy_ca),
                             ("etcd-ca", paths.etcd_ca)):
            cas[issuer], done = ensure_ca(pair, CA_NAMES[issuer])
            name = paths.display_name(pair.cert)
            report._done(name, None if done is None else "missing" if done == "created" else done)
        report._done("serviceaccount.key", _ensure_service_account(paths))
        for leaf in _leaves(paths, node):
            forced = "refresh requested" if leaf.name in force else None
            ca = cas[leaf.issuer]
            if isinstance(leaf.target, CertKeyPair):
                reason = _ensure_file_leaf(leaf, leaf.target, ca, forced, now)
            else:
                reason = _ensure_kubeconfig(leaf, leaf.target, ca, node, forced, now)
            report._done(leaf.name, reason)
    return report


def _ensure_service_account(paths: PkiPaths) -> str | None:
    """The token signing key pair. Replacing the key would invalidate every
    service-account token in the cluster, so a damaged key is an error."""
    key_path, pub_path = paths.service_account_key, paths.service_account_pub
    key: PrivateKey
    if not key_path.exists():
        key = new_key()
        write_private(key_path, private_pem(key))
        write_atomic(pub_path, public_pem(key), 0o644)
        return "missing"
    key = load_private_key(key_path)
    pub = public_pem(key)
    if not pub_path.exists() or pub_path.read_bytes() != pub:
        write_atomic(pub_path, pub, 0o644)
        return "public key re-written from the private key"
    return None


def _issue(spec: LeafSpec, ca: CertificateAuthority, now: dt.datetime) -> tuple[
    x509.Certificate, PrivateKey
]:
    key = new_key()
    return ca.issue(spec, key.public_key(), now), key


def _ensure_file_leaf(
    leaf: _Leaf, pair: CertKeyPair, ca: CertificateAuthority, forced: str | None,
    now: dt.datetime,
) -> str | None:
    reason = forced or _file_leaf_reason(leaf, pair, ca, now)
    if reason is None:
        return None
    cert, key = _issue(leaf.spec, ca, now)
    # Key first: a crash in between leaves a pair that does not match, which
    # the next run notices and re-issues.
    write_private(pair.key, private_pem(key))
    write_atomic(pair.cert, cert_pem(cert), 0o644)
    return reason


def _file_leaf_reason(
    leaf: _Leaf, pair: CertKeyPair, ca: CertificateAuthority, now: dt.datetime
) -> str | None:
    has_cert, has_key = pair.cert.exists(), pair.key.exists()
    if not has_cert and not has_key:
        return "missing"
    if not has_cert or not has_key:
        return "certificate or key missing"
    try:
        cert, key = load_cert(pair.cert), load_private_key(pair.key)
    except PkiError:
        return "unreadable"
    return reissue_reason(cert, key, leaf.spec, ca.cert, now)


def _ensure_kubeconfig(
    leaf: _Leaf, path: Path, ca: CertificateAuthority, node: NodeIdentity,
    forced: str | None, now: dt.datetime,
) -> str | None:
    if not path.exists():
        reason: str | None = "missing"
        cert, key = None, None
    else:
        cert, key, reason = _kubeconfig_state(leaf, path, ca, node, now)
    reason = forced or reason
    if reason is None:
        return None
    if cert is None or key is None or forced:
        cert, key = _issue(leaf.spec, ca, now)
    user = path.name.removesuffix(".config")
    write_private(path, render_kubeconfig(
        server=node.api_server_url, ca=ca.cert_pem, user=user,
        cert=cert_pem(cert), key=private_pem(key),
    ))
    return reason


def _kubeconfig_state(
    leaf: _Leaf, path: Path, ca: CertificateAuthority, node: NodeIdentity, now: dt.datetime
) -> tuple[x509.Certificate | None, PrivateKey | None, str | None]:
    """The kubeconfig's client cert and key if they may stay, and why it must be rewritten.

    A kubeconfig whose certificate is fine but whose server URL or CA changed
    is rewritten around the same certificate.
    """
    try:
        info = read_kubeconfig(path)
        cert, key = info.client_cert(), info.client_key()
    except PkiError:
        return None, None, "unreadable"
    if cert is None or key is None:
        return None, None, "no client certificate"
    why = reissue_reason(cert, key, leaf.spec, ca.cert, now)
    if why is not None:
        return None, None, why
    if info.server != node.api_server_url:
        return cert, key, f"server changed to {node.api_server_url}"
    if not _is_cert(info.ca_pem, ca.cert):
        return cert, key, "CA data changed"
    return cert, key, None


def _is_cert(pem: bytes | None, cert: x509.Certificate) -> bool:
    if pem is None:
        return False
    try:
        return x509.load_pem_x509_certificate(pem) == cert
    except ValueError:
        return False
