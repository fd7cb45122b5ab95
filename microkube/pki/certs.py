"""Leaf certificates: what one should say (a spec), issuing it, and checking it.

A spec is the whole truth about a certificate we want: subject, usage and
the names it must cover. ``reissue_reason`` compares a certificate on disk
with its spec, so renewal is one rule: re-issue whenever the answer is not None.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from microkube.pki.errors import PkiError
from microkube.pki.keys import PrivateKey, PublicKey, public_der
from microkube.pki.lifetime import backdate, leaf_validity, renew_at

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# How long leaves live and when they are renewed: pki/lifetime.py.


class Usage(enum.Enum):
    CLIENT = "client"
    SERVER = "server"
    PEER = "peer"  # both: etcd peers present their serving certificate as clients

    @property
    def extended_key_usages(self) -> frozenset[x509.ObjectIdentifier]:
        server = ExtendedKeyUsageOID.SERVER_AUTH
        client = ExtendedKeyUsageOID.CLIENT_AUTH
        return {
            Usage.CLIENT: frozenset({client}),
            Usage.SERVER: frozenset({server}),
            Usage.PEER: frozenset({server, client}),
        }[self]


@dataclass(frozen=True)
class LeafSpec:
    """What a leaf certificate must say."""

    common_name: str
    usage: Usage
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()
    # None: pki.lifetime.leaf_validity() when it is issued (a year unless a test shortens it).
    validity: dt.timedelta | None = field(default=None)

    def subject(self) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in self.organizations]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, self.common_name))
        return x509.Name(attrs)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_certificate(
    *,
    subject: x509.Name,
    public_key: PublicKey,
    issuer_cert: x509.Certificate | None,
    issuer_key: PrivateKey,
    validity: dt.timedelta,
    extensions: list[tuple[x509.ExtensionType, bool]],
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Sign a certificate; ``issuer_cert`` None means self-signed (a new CA)."""
    now = now or utcnow()
    issuer_name = subject if issuer_cert is None else issuer_cert.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate(validity))
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    issuer_public = issuer_key.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def leaf_extensions(
    spec: LeafSpec, public_key: PublicKey
) -> list[tuple[x509.ExtensionType, bool]]:
    exts: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (
            x509.KeyUsage(
                digital_signature=True,
                # Only RSA keys can encipher (TLS 1.2 RSA key exchange).
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
        (x509.ExtendedKeyUsage(sorted(spec.usage.extended_key_usages, key=str)), False),
    ]
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in spec.dns_names]
    names += [x509.IPAddress(ip) for ip in spec.ip_addresses]
    if names:
        exts.append((x509.SubjectAlternativeName(names), False))
    return exts


def issue_leaf(
    spec: LeafSpec,
    public_key: PublicKey,
    issuer_cert: x509.Certificate,
    issuer_key: PrivateKey,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    return build_certificate(
        subject=spec.subject(),
        public_key=public_key,
        issuer_cert=issuer_cert,
        issuer_key=issuer_key,
        validity=spec.validity or leaf_validity(),
        extensions=leaf_extensions(spec, public_key),
        now=now,
    )


# --- reading and checking ---------------------------------------------------------


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def parse_cert(data: bytes, source: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as e:
        raise PkiError(f"{source}: not a readable PEM certificate ({e})") from None


def load_cert(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PkiError(f"cannot read {path}: {e.strerror}") from None
    return parse_cert(data, str(path))


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 of ``cert``'s DER encoding: 64 lowercase hex digits.

    What a joining node pins: the cluster CA's, which outlives every leaf.
    """
    return cert.fingerprint(hashes.SHA256()).hex()


def cert_public_der(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def subject_values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def san_names(cert: x509.Certificate) -> tuple[set[str], set[IPAddress]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    ips = {ip for ip in san.get_values_for_type(x509.IPAddress) if isinstance(ip, IPAddress)}
    return set(san.get_values_for_type(x509.DNSName)), ips


def extended_key_usages(cert: x509.Certificate) -> frozenset[x509.ObjectIdentifier]:
    try:
        return frozenset(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return frozenset()


def is_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def days_left(cert: x509.Certificate, now: dt.datetime | None = None) -> int:
    return (cert.not_valid_after_utc - (now or utcnow())).days


def time_left(cert: x509.Certificate, now: dt.datetime | None = None) -> str:
    """What is left of ``cert``'s validity, in words: "12 days", "3 h", "95 s"."""
    seconds = (cert.not_valid_after_utc - (now or utcnow())).total_seconds()
    if seconds >= 2 * 86400:
        return f"{int(seconds // 86400)} days"
    if seconds >= 2 * 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds)} s"


def reissue_reason(
    cert: x509.Certificate,
    key: PrivateKey,
    spec: LeafSpec,
    issuer: x509.Certificate,
    now: dt.datetime | None = None,
) -> str | None:
    """Why ``cert`` (with ``key``) no longer fits ``spec``, or None if it can stay.

    A certificate is due for renewal once less than a third of its lifetime (at most
    30 days) is left: pki/lifetime.py.
    """
    now = now or utcnow()
    if cert_public_der(cert) != public_der(key):
        return "key does not match certificate"
    if not is_issued_by(cert, issuer):
        return "not issued by the current CA"
    if cert.not_valid_before_utc > now:
        return "not valid yet (clock moved back?)"
    if now >= renew_at(cert.not_valid_before_utc, cert.not_valid_after_utc):
        return f"expires in {time_left(cert, now)}"
    if subject_values(cert.subject, NameOID.COMMON_NAME) != [spec.common_name]:
        return "common name changed"
    if sorted(subject_values(cert.subject, NameOID.ORGANIZATION_NAME)) != sorted(
        spec.organizations
    ):
        return "organisation changed"
    if extended_key_usages(cert) != spec.usage.extended_key_usages:
        return "usage changed"
    dns, ips = san_names(cert)
    missing = [n for n in spec.dns_names if n not in dns]
    missing += [str(ip) for ip in spec.ip_addresses if ip not in ips]
    if missing:
        return "does not cover " + ", ".join(missing)
    return None
