"""Certificate authorities: create, load, keep; and sign requests from other nodes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from microkube.fsutil import write_atomic, write_private
from microkube.paths import CertKeyPair
from microkube.pki.certs import (
    LeafSpec,
    build_certificate,
    cert_pem,
    cert_public_der,
    issue_leaf,
    load_cert,
)
from microkube.pki.errors import CsrRefused, PkiError
from microkube.pki.keys import (
    PrivateKey,
    PublicKey,
    check_public_key_strength,
    load_private_key,
    new_key,
    private_pem,
    public_der,
)
from microkube.pki.profiles import SigningProfile

CA_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return cert_pem(self.cert)

    def issue(
        self, spec: LeafSpec, public_key: PublicKey, now: dt.datetime | None = None
    ) -> x509.Certificate:
        return issue_leaf(spec, public_key, self.cert, self.key, now)


def _ca_extensions() -> list[tuple[x509.ExtensionType, bool]]:
    return [
        # Path length 0: this CA signs leaves only, never another CA.
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
    ]


def create_ca(
    common_name: str, key: PrivateKey | None = None, now: dt.datetime | None = None
) -> CertificateAuthority:
    """A new self-signed CA valid for ten years (with a new key unless one is given)."""
    key = key or new_key()
    cert = build_certificate(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
        public_key=key.public_key(),
        issuer_cert=None,
        issuer_key=key,
        validity=CA_VALIDITY,
        extensions=_ca_extensions(),
        now=now,
    )
    return CertificateAuthority(cert, key)


def load_ca(pair: CertKeyPair) -> CertificateAuthority:
    cert = load_cert(pair.cert)
    key = load_private_key(pair.key)
    if cert_public_der(cert) != public_der(key):
        raise PkiError(f"{pair.key} does not belong to {pair.cert}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise PkiError(f"{pair.cert} is not a CA certificate")
    return CertificateAuthority(cert, key)


def write_ca(pair: CertKeyPair, ca: CertificateAuthority) -> None:
    # Key first: a crash in between leaves a key without a certificate, which
    # ensure_ca repairs by re-signing the same key (see below).
    write_private(pair.key, private_pem(ca.key))
    write_atomic(pair.cert, ca.cert_pem, 0o644)


def ensure_ca(pair: CertKeyPair, common_name: str) -> tuple[CertificateAuthority, str | None]:
    """Load the CA, or make it if there is none. Returns it and what was done.

    A CA is never replaced: everything in the cluster trusts it. If only its
    key is left (a crash between the two writes of a first start), the
    certificate is re-made from that key under the same name, which every
    certificate it signed still verifies against.
    """
    has_cert, has_key = pair.cert.exists(), pair.key.exists()
    if has_cert and has_key:
        return load_ca(pair), None
    if has_cert:
        raise PkiError(
            f"{pair.cert} exists but its key {pair.key} is missing; restore the key "
            "(or remove both to start a new cluster CA)"
        )
    if has_key:
        ca = create_ca(common_name, key=load_private_key(pair.key))
        write_atomic(pair.cert, ca.cert_pem, 0o644)
        return ca, "re-made from its existing key"
    ca = create_ca(common_name)
    write_ca(pair, ca)
    return ca, "created"


def sign_csr(
    ca: CertificateAuthority,
    csr_pem: bytes,
    profile: SigningProfile,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Sign a PEM certificate request if ``profile`` allows exactly what it asks.

    The request only proposes a subject, names and a key: usages, validity and
    every other extension come from the profile, never from the request.
    Raises :class:`CsrRefused` with the reason otherwise.
    """
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as e:
        raise CsrRefused(f"not a readable PEM certificate request ({e})") from None
    if not csr.is_signature_valid:
        raise CsrRefused("the request's signature does not verify")
    public_key = csr.public_key()
    if not isinstance(public_key, PublicKey):
        raise CsrRefused(f"key type {type(public_key).__name__} is not accepted (use EC or RSA)")
    weakness = check_public_key_strength(public_key)
    if weakness:
        raise CsrRefused(weakness)
    spec = profile.check(csr)
    return ca.issue(spec, public_key, now)
