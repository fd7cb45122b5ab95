"""The node PKI: CAs, leaves, kubeconfigs, renewal and CSR signing (no root needed)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from microkube.errors import UsageError
from microkube.paths import PkiPaths
from microkube.pki.ca import load_ca, sign_csr
from microkube.pki.certs import is_issued_by, load_cert, san_names
from microkube.pki.errors import CsrRefused, PkiError
from microkube.pki.expiry import check_expiry, unreadable
from microkube.pki.hostinfo import select_host_ips, service_ips
from microkube.pki.keys import private_pem
from microkube.pki.kubeconfig import read_kubeconfig, render_kubeconfig
from microkube.pki.node import LEAF_NAMES, ensure_node_pki, refresh
from microkube.pki.profiles import (
    kube_proxy_profile,
    kubelet_client_profile,
    kubelet_serving_profile,
)

NODE = "node-1"
HOSTNAME = "edge-box"
IPS = ["192.0.2.10", "2001:db8::10"]
URL = "https://127.0.0.1:16443"


def node_args(tmp: Path, **over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "certs_dir": tmp / "certs",
        "credentials_dir": tmp / "credentials",
        "node_name": NODE,
        "host_ips": IPS,
        "hostname": HOSTNAME,
        "service_cidr": "10.152.183.0/24",
        "cluster_domain": "cluster.local",
        "api_server_url": URL,
    }
    args.update(over)
    return args


@pytest.fixture
def pki(tmp_path: Path) -> PkiPaths:
    report = ensure_node_pki(**node_args(tmp_path))
    assert not report.renewed and not report.kept
    return report.paths


def snapshot(paths: PkiPaths) -> dict[Path, tuple[bytes, int]]:
    files = [p for d in (paths.certs_dir, paths.credentials_dir) for p in d.rglob("*")]
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files if p.is_file()}


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def orgs(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def ekus(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def kubeconfig_cert(path: Path) -> x509.Certificate:
    cert = read_kubeconfig(path).client_cert()
    assert cert is not None
    return cert


def make_csr(cn_: str, orgs_: tuple[str, ...] = (), sans: list[x509.GeneralName] | None = None,
             key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None) -> bytes:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs_]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn_))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key or ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).public_bytes(
        Encoding.PEM
    )


# --- certificate authorities -------------------------------------------------------


def test_cas_are_ten_year_cas(pki: PkiPaths) -> None:
    for pair in (pki.ca, pki.front_proxy_ca, pki.etcd_ca):
        ca = load_ca(pair)
        life = ca.cert.not_valid_after_utc - ca.cert.not_valid_before_utc
        assert dt.timedelta(days=3649) < life < dt.timedelta(days=3652)
        bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca
        ku = ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.key_cert_sign and ku.crl_sign
        assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
        ca.cert.verify_directly_issued_by(ca.cert)  # self-signed


def test_three_distinct_cas(pki: PkiPaths) -> None:
    subjects = {load_cert(p.cert).subject for p in (pki.ca, pki.front_proxy_ca, pki.etcd_ca)}
    assert len(subjects) == 3


# --- serving certificates --------------------------------------------------------


def test_api_server_sans(pki: PkiPaths) -> None:
    cert = load_cert(pki.server.cert)
    dns, ips = san_names(cert)
    assert {
        "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster", "kubernetes.default.svc.cluster.local",
        HOSTNAME, NODE,
    } <= dns
    want_ips = {ipaddress.ip_address(a) for a in ["127.0.0.1", "10.152.183.1", *IPS]}
    assert want_ips <= ips
    assert ekus(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=364) < life < dt.timedelta(days=367)


def test_cluster_domain_and_dual_stack_service_range(tmp_path: Path) -> None:
    report = ensure_node_pki(**node_args(
        tmp_path, cluster_domain="corp.example", service_cidr="10.96.0.0/12,fd00:10:96::/112"))
    dns, ips = san_names(load_cert(report.paths.server.cert))
    assert {"kubernetes.default.svc.corp", "kubernetes.default.svc.corp.example"} <= dns
    assert "kubernetes.default.svc.cluster.local" not in dns
    assert {ipaddress.ip_address("10.96.0.1"), ipaddress.ip_address("fd00:10:96::1")} <= ips


def test_kubelet_and_etcd_serving_certs(pki: PkiPaths) -> None:
    node_ips = {ipaddress.ip_address(a) for a in ["127.0.0.1", *IPS]}
    kubelet = load_cert(pki.kubelet.cert)
    dns, ips = san_names(kubelet)
    assert {NODE, HOSTNAME} <= dns and node_ips <= ips
    kubelet.verify_directly_issued_by(load_cert(pki.ca.cert))
    etcd = load_cert(pki.etcd_server.cert)
    dns, ips = san_names(etcd)
    assert {"localhost", HOSTNAME} <= dns and node_ips <= ips
    # Peers present the serving certificate as clients too.
    assert ekus(etcd) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


# --- client certificates ----------------------------------------------------------


def test_kubeconfig_identities(pki: PkiPaths) -> None:
    want = {
        "admin": ("admin", ["system:masters"]),
        "controller": ("system:kube-controller-manager", []),
        "scheduler": ("system:kube-scheduler", []),
        "kubelet": (f"system:node:{NODE}", ["system:nodes"]),
        "proxy": ("system:kube-proxy", []),
        "flannel": ("flannel", []),
    }
    for name, (want_cn, want_orgs) in want.items():
        cert = kubeconfig_cert(pki.kubeconfig(name))
        assert (cn(cert), orgs(cert)) == (want_cn, want_orgs), name
        assert ekus(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}


def test_file_client_certs(pki: PkiPaths) -> None:
    kubelet_client = load_cert(pki.apiserver_kubelet_client.cert)
    assert (cn(kubelet_client), orgs(kubelet_client)) == (
        "kube-apiserver-kubelet-client", ["system:masters"])
    assert cn(load_cert(pki.front_proxy_client.cert)) == "front-proxy-client"
    assert cn(load_cert(pki.etcd_apiserver_client.cert)) == "kube-apiserver-etcd-client"


def test_every_leaf_chains_to_its_ca(pki: PkiPaths) -> None:
    ca, fp, etcd = (load_cert(p.cert) for p in (pki.ca, pki.front_proxy_ca, pki.etcd_ca))
    for pair, issuer in [(pki.server, ca), (pki.kubelet, ca), (pki.apiserver_kubelet_client, ca),
                         (pki.front_proxy_client, fp), (pki.etcd_server, etcd),
                         (pki.etcd_apiserver_client, etcd)]:
        load_cert(pair.cert).verify_directly_issued_by(issuer)
    for path in pki.kubeconfigs.values():
        kubeconfig_cert(path).verify_directly_issued_by(ca)


def test_etcd_client_cert_is_no_api_server_login(pki: PkiPaths) -> None:
    etcd_client = load_cert(pki.etcd_apiserver_client.cert)
    assert not is_issued_by(etcd_client, load_cert(pki.ca.cert))
    assert not is_issued_by(load_cert(pki.front_proxy_client.cert), load_cert(pki.ca.cert))


# --- files -------------------------------------------------------------------------


def test_file_modes(pki: PkiPaths) -> None:
    private = [p.key for p in (pki.ca, pki.front_proxy_ca, pki.etcd_ca, pki.server, pki.kubelet,
                               pki.apiserver_kubelet_client, pki.front_proxy_client,
                               pki.etcd_server, pki.etcd_apiserver_client)]
    private += [pki.service_account_key, *pki.kubeconfigs.values()]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    certs = list(pki.certs_dir.rglob("*.crt"))
    assert len(certs) >= 3, certs  # at least the three CAs
    for path in certs:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE(pki.service_account_pub.stat().st_mode) == 0o644
    for d in (pki.certs_dir, pki.etcd_dir, pki.credentials_dir):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_service_account_key_pair(pki: PkiPaths) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from microkube.pki.keys import load_private_key, public_pem

    key = load_private_key(pki.service_account_key)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert public_pem(key) == pki.service_account_pub.read_bytes()
    load_pem_public_key(pki.service_account_pub.read_bytes())


def test_kubeconfig_yaml(pki: PkiPaths) -> None:
    doc = yaml.safe_load(pki.kubeconfig("admin").read_text())
    assert doc["kind"] == "Config"
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == URL
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca.cert.read_bytes()
    user = doc["users"][0]
    assert user["name"] == "admin" and doc["contexts"][0]["context"]["user"] == "admin"
    assert doc["current-context"] == doc["contexts"][0]["name"]


def test_kubeconfig_with_file_references(tmp_path: Path) -> None:
    ca_pem = b"-----BEGIN CERTIFICATE-----\n...\n"
    (tmp_path / "ca.crt").write_bytes(ca_pem)
    (tmp_path / "c.crt").write_bytes(b"cert")
    (tmp_path / "c.key").write_bytes(b"key")
    path = tmp_path / "x.config"
    path.write_text(render_kubeconfig(server=URL, ca=tmp_path / "ca.crt", user="x",
                                      cert=tmp_path / "c.crt", key=tmp_path / "c.key"))
    doc = yaml.safe_load(path.read_text())
    assert doc["users"][0]["user"] == {"client-certificate": str(tmp_path / "c.crt"),
                                       "client-key": str(tmp_path / "c.key")}
    info = read_kubeconfig(path)
    assert (info.server, info.ca_pem, info.cert_pem, info.key_pem) == (URL, ca_pem, b"cert", b"key")


# --- idempotency and renewal -------------------------------------------------------


def test_second_run_changes_nothing(tmp_path: Path, pki: PkiPaths) -> None:
    before = snapshot(pki)
    report = ensure_node_pki(**node_args(tmp_path))
    assert not report.changed and report.lines() == []
    assert len(report.kept) == 4 + len(LEAF_NAMES)  # three CAs, the service-account key
    assert snapshot(pki) == before


def test_new_ip_reissues_serving_certs_and_keeps_cas(tmp_path: Path, pki: PkiPaths) -> None:
    before = snapshot(pki)
    report = ensure_node_pki(**node_args(tmp_path, host_ips=[*IPS, "198.51.100.7"]))
    assert set(report.renewed) == {"server.crt", "kubelet.crt", "etcd/server.crt", "cluster-agent.crt"}
    assert "198.51.100.7" in report.renewed["server.crt"]
    assert not report.created
    after = snapshot(pki)
    for pair in (pki.ca, pki.front_proxy_ca, pki.etcd_ca):
        assert after[pair.cert] == before[pair.cert] and after[pair.key] == before[pair.key]
    assert after[pki.kubeconfig("admin")] == before[pki.kubeconfig("admin")]
    server = load_cert(pki.server.cert)
    assert ipaddress.ip_address("198.51.100.7") in san_names(server)[1]
    server.verify_directly_issued_by(load_cert(pki.ca.cert))
    # A dropped address does not force a new certificate: the rest is still covered.
    assert not ensure_node_pki(**node_args(tmp_path, host_ips=IPS[:1])).changed


def test_hostname_change_reissues(tmp_path: Path, pki: PkiPaths) -> None:
    report = ensure_node_pki(**node_args(tmp_path, hostname="other-box"))
    assert set(report.renewed) == {"server.crt", "kubelet.crt", "etcd/server.crt", "cluster-agent.crt"}


def test_renews_leaves_within_thirty_days_of_expiry(tmp_path: Path, pki: PkiPaths) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=340)
    report = ensure_node_pki(**node_args(tmp_path), now=later)
    assert set(report.renewed) == set(LEAF_NAMES)
    assert all("expires in" in why for why in report.renewed.values())
    assert {"ca.crt", "front-proxy-ca.crt", "etcd/ca.crt"} <= set(report.kept)
    assert load_cert(pki.server.cert).not_valid_after_utc > later + dt.timedelta(days=300)


def test_server_url_change_keeps_client_cert(tmp_path: Path, pki: PkiPaths) -> None:
    old = kubeconfig_cert(pki.kubeconfig("admin"))
    report = ensure_node_pki(**node_args(tmp_path, api_server_url="https://10.0.0.5:16443"))
    assert set(report.renewed) == {f"{n}.config" for n in pki.kubeconfigs}
    assert read_kubeconfig(pki.kubeconfig("admin")).server == "https://10.0.0.5:16443"
    assert kubeconfig_cert(pki.kubeconfig("admin")) == old


def test_mismatched_or_missing_key_is_reissued(tmp_path: Path, pki: PkiPaths) -> None:
    pki.server.key.write_bytes(private_pem(ec.generate_private_key(ec.SECP256R1())))
    pki.kubelet.key.unlink()
    report = ensure_node_pki(**node_args(tmp_path))
    assert report.renewed == {"server.crt": "key does not match certificate",
                              "kubelet.crt": "certificate or key missing"}


def test_leaf_from_a_foreign_ca_is_reissued(tmp_path: Path, pki: PkiPaths) -> None:
    other = ensure_node_pki(**node_args(tmp_path / "other")).paths
    pki.server.cert.write_bytes(other.server.cert.read_bytes())
    pki.server.key.write_bytes(other.server.key.read_bytes())
    report = ensure_node_pki(**node_args(tmp_path))
    assert report.renewed == {"server.crt": "not issued by the current CA"}


def test_ca_cert_remade_from_its_key_keeps_leaves(tmp_path: Path, pki: PkiPaths) -> None:
    admin = kubeconfig_cert(pki.kubeconfig("admin"))
    pki.ca.cert.unlink()
    report = ensure_node_pki(**node_args(tmp_path))
    assert report.renewed.pop("ca.crt") == "re-made from its existing key"
    # Kubeconfigs embed the CA certificate, so they are rewritten around the same client cert.
    assert report.renewed == {f"{n}.config": "CA data changed" for n in pki.kubeconfigs}
    assert kubeconfig_cert(pki.kubeconfig("admin")) == admin
    assert {"server.crt", "kubelet.crt", "etcd/server.crt", "cluster-agent.crt"} <= set(report.kept)


def test_ca_without_key_is_an_error(tmp_path: Path, pki: PkiPaths) -> None:
    pki.ca.key.unlink()
    with pytest.raises(PkiError, match=r"ca\.key is missing"):
        ensure_node_pki(**node_args(tmp_path))


def test_refresh_reissues_leaves_not_cas(tmp_path: Path, pki: PkiPaths) -> None:
    before = snapshot(pki)
    report = refresh(**node_args(tmp_path))
    assert set(report.renewed) == set(LEAF_NAMES)
    after = snapshot(pki)
    assert after[pki.ca.cert] == before[pki.ca.cert]
    assert after[pki.server.cert] != before[pki.server.cert]
    only = refresh(**node_args(tmp_path), only=["server.crt"])
    assert set(only.renewed) == {"server.crt"}
    with pytest.raises(UsageError, match=r"ca\.crt alone"):
        refresh(**node_args(tmp_path), only=["ca.crt"])


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    bad: list[dict[str, Any]] = [
        {"node_name": "Node_1"}, {"hostname": "bad host"}, {"host_ips": ["300.1.1.1"]},
        {"service_cidr": "10.152.183.1/24"}, {"cluster_domain": "-x"},
        {"api_server_url": "http://127.0.0.1:16443"},
    ]
    for over in bad:
        with pytest.raises(UsageError):
            ensure_node_pki(**node_args(tmp_path, **over))
    assert list(tmp_path.iterdir()) == []


# --- expiry report ------------------------------------------------------------------


def test_check_expiry(pki: PkiPaths) -> None:
    found = check_expiry(pki.certs_dir, pki.credentials_dir)
    by_name = {pki.display_name(e.path): e for e in found}
    assert by_name["ca.crt"].days_left >= 3648
    assert 363 <= by_name["server.crt"].days_left <= 365
    assert "admin.config" in by_name and "etcd/server.crt" in by_name
    assert found[-1].days_left >= 3648  # soonest first, CAs last
    assert check_expiry(pki.certs_dir / "nowhere") == []


def test_unreadable_certificates_are_listed_not_silently_skipped(pki: PkiPaths) -> None:
    assert unreadable(pki.certs_dir, pki.credentials_dir) == []
    pki.server.cert.write_text("")
    (pki.credentials_dir / "admin.config").write_text("garbage: [\n")
    bad = unreadable(pki.certs_dir, pki.credentials_dir)
    assert [pki.display_name(path) for path, _ in bad] == ["server.crt", "admin.config"]
    assert all(why and str(path) not in why for path, why in bad), bad
    # The expiry report (status's warning) still skips them.
    names = {pki.display_name(e.path) for e in check_expiry(pki.certs_dir, pki.credentials_dir)}
    assert "server.crt" not in names and "kubelet.crt" in names


# --- signing requests from other nodes ------------------------------------------------


def test_sign_csr_accepts_kubelet_client(pki: PkiPaths) -> None:
    ca = load_ca(pki.ca)
    cert = sign_csr(ca, make_csr("system:node:worker-2", ("system:nodes",)),
                    kubelet_client_profile("worker-2"))
    assert (cn(cert), orgs(cert)) == ("system:node:worker-2", ["system:nodes"])
    assert ekus(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    cert.verify_directly_issued_by(ca.cert)
    # Without a fixed name any valid node name is fine.
    sign_csr(ca, make_csr("system:node:w3", ("system:nodes",)), kubelet_client_profile())


@pytest.mark.parametrize(("csr_cn", "csr_orgs", "match"), [
    ("system:node:worker-2", ("system:nodes", "system:masters"), "organisations"),
    ("system:node:worker-2", ("system:masters",), "organisations"),
    ("system:node:worker-2", (), "organisations"),
    ("admin", ("system:nodes",), "common name"),
    ("system:node:other", ("system:nodes",), "common name"),
])
def test_sign_csr_refuses_other_subjects(
    pki: PkiPaths, csr_cn: str, csr_orgs: tuple[str, ...], match: str
) -> None:
    with pytest.raises(CsrRefused, match=match):
        sign_csr(load_ca(pki.ca), make_csr(csr_cn, csr_orgs), kubelet_client_profile("worker-2"))


@pytest.mark.parametrize("csr_cn", ["system:node:", "system:node:Bad_Name", "system:masters"])
def test_sign_csr_without_fixed_name_still_needs_a_node_name(pki: PkiPaths, csr_cn: str) -> None:
    with pytest.raises(CsrRefused, match="common name"):
        sign_csr(load_ca(pki.ca), make_csr(csr_cn, ("system:nodes",)), kubelet_client_profile())


def test_sign_csr_refuses_names_on_client_certs_and_weak_keys(pki: PkiPaths) -> None:
    ca = load_ca(pki.ca)
    with pytest.raises(CsrRefused, match="may not name hosts"):
        sign_csr(ca, make_csr("system:node:w", ("system:nodes",), [x509.DNSName("w")]),
                 kubelet_client_profile("w"))
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CsrRefused, match="too short"):
        sign_csr(ca, make_csr("system:node:w", ("system:nodes",), key=weak),
                 kubelet_client_profile("w"))
    with pytest.raises(CsrRefused, match="not a readable"):
        sign_csr(ca, b"garbage", kubelet_client_profile("w"))
    extra = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "x"),
        x509.NameAttribute(NameOID.COMMON_NAME, "system:node:w"),
    ])).sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    with pytest.raises(CsrRefused, match="subject fields not allowed: OU"):
        sign_csr(ca, extra.public_bytes(Encoding.PEM), kubelet_client_profile("w"))


def test_sign_csr_kubelet_serving_and_proxy(pki: PkiPaths) -> None:
    ca = load_ca(pki.ca)
    sans: list[x509.GeneralName] = [x509.DNSName("w"),
                                    x509.IPAddress(ipaddress.ip_address("192.0.2.20"))]
    cert = sign_csr(ca, make_csr("system:node:w", ("system:nodes",), sans),
                    kubelet_serving_profile("w"))
    assert ekus(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert san_names(cert) == ({"w"}, {ipaddress.ip_address("192.0.2.20")})
    with pytest.raises(CsrRefused, match="at least one"):
        sign_csr(ca, make_csr("system:node:w", ("system:nodes",)), kubelet_serving_profile("w"))
    with pytest.raises(CsrRefused, match="DNS names and IP"):
        sign_csr(ca, make_csr("system:node:w", ("system:nodes",),
                              [x509.UniformResourceIdentifier("spiffe://x")]),
                 kubelet_serving_profile("w"))
    assert cn(sign_csr(ca, make_csr("system:kube-proxy"), kube_proxy_profile())) == (
        "system:kube-proxy")
    with pytest.raises(CsrRefused):
        sign_csr(ca, make_csr("system:kube-proxy", ("system:masters",)), kube_proxy_profile())


# --- real TLS with the issued files ----------------------------------------------------


def test_mutual_tls_handshake_over_loopback(tmp_path: Path, pki: PkiPaths) -> None:
    """OpenSSL (through Python's ssl) accepts the server cert for 127.0.0.1 and
    the admin client cert, both verified against ca.crt."""
    info = read_kubeconfig(pki.kubeconfig("admin"))
    assert info.cert_pem and info.key_pem
    client_pem = tmp_path / "admin.pem"
    client_pem.write_bytes(info.cert_pem + info.key_pem)

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.server.cert, pki.server.key)
    server_ctx.load_verify_locations(pki.ca.cert)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(pki.ca.cert))
    client_ctx.load_cert_chain(client_pem)

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    peer: dict[str, Any] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            peer.update(tls.getpeercert() or {})
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.recv(2) == b"ok"
    finally:
        thread.join(timeout=5)
        listener.close()
    assert (("commonName", "admin"),) in peer["subject"]


# --- host facts --------------------------------------------------------------------------


class _Addr:
    def __init__(self, family: int, address: str) -> None:
        self.family = family
        self.address = address


def test_select_host_ips() -> None:
    addrs = {
        "lo": [_Addr(socket.AF_INET, "127.0.0.1"), _Addr(socket.AF_INET6, "::1")],
        "eth0": [_Addr(socket.AF_INET, "192.0.2.5"), _Addr(socket.AF_INET6, "fe80::1%eth0"),
                 _Addr(socket.AF_INET6, "2001:db8::5"), _Addr(17, "aa:bb:cc:dd:ee:ff")],
        "eth1": [_Addr(socket.AF_INET, "169.254.3.4"), _Addr(socket.AF_INET, "10.0.0.9")],
        "down0": [_Addr(socket.AF_INET, "10.9.9.9")],
        "flannel.1": [_Addr(socket.AF_INET, "10.1.0.0")],
        "cni0": [_Addr(socket.AF_INET, "10.1.0.1")],
    }
    up = ["lo", "eth0", "eth1", "flannel.1", "cni0"]
    assert [str(ip) for ip in select_host_ips(addrs, up)] == ["10.0.0.9", "192.0.2.5",
                                                             "2001:db8::5"]


# Interfaces in a network namespace of the test's own (made in a user namespace: no root
# needed): one address of each kind host_ips() keeps or leaves out.
NETNS_SETUP = """
set -e
ip link set lo up
ip link add mk0 type veth peer name mk0p
ip addr add 192.0.2.7/24 dev mk0
ip addr add 2001:db8::7/64 dev mk0 nodad
ip addr add 169.254.3.4/16 dev mk0p
ip link add cni0 type veth peer name mk1
ip addr add 10.1.0.1/24 dev cni0
ip addr add 198.51.100.9/24 dev mk1
ip link add mk2 type veth peer name mk2p
ip addr add 10.9.9.9/24 dev mk2
for link in mk0 mk0p cni0 mk1; do ip link set $link up; done
exec "$@"
"""


def test_host_ips_reads_the_kernels_interfaces() -> None:
    """Loopback, link-local, down links and microkube's own (cni0) are left out; IPv4 first."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare (util-linux) or ip (iproute2) is not installed")
    code = "from microkube.pki.hostinfo import host_ips; print(' '.join(str(ip) for ip in host_ips()))"
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", NETNS_SETUP,
                           "sh", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["192.0.2.7", "198.51.100.9", "2001:db8::7"]


def test_service_ips() -> None:
    assert [str(i) for i in service_ips("10.152.183.0/24")] == ["10.152.183.1"]
    with pytest.raises(UsageError):
        service_ips("not-a-cidr")
