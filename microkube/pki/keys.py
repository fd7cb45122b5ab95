"""Private keys: generate, serialise, load.

Every key microkube makes is ECDSA P-256: generating one takes well under a
millisecond (an RSA 2048 key takes tens), certificates stay small, and every
consumer accepts it: Go's TLS stack (API server, kubelet, etcd, containerd,
flannel), OpenSSL, and the API server's service-account token signer (ES256).
Existing RSA keys (a CA brought over from elsewhere) load and sign too.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from microkube.pki.errors import PkiError

# The key types we sign with and accept from requests.
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

MIN_RSA_BITS = 2048
ACCEPTED_CURVES = ("secp256r1", "secp384r1")


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM ("PRIVATE KEY"): read by Go's keyutil, tls.X509KeyPair and OpenSSL."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: PrivateKey | PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM ("PUBLIC KEY")."""
    public = key.public_key() if isinstance(key, PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_der(key: PrivateKey | PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def parse_private_key(data: bytes, source: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise PkiError(f"{source}: not a readable PEM private key ({e})") from None
    if not isinstance(key, PrivateKey):
        raise PkiError(f"{source}: unsupported key type {type(key).__name__} (need EC or RSA)")
    return key


def load_private_key(path: Path) -> PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PkiError(f"cannot read {path}: {e.strerror}") from None
    return parse_private_key(data, str(path))


def check_public_key_strength(key: PublicKey) -> str | None:
    """Why a requester's public key is too weak, or None if it is fine."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ACCEPTED_CURVES:
            return f"EC curve {key.curve.name} is not accepted (use P-256 or P-384)"
        return None
    if key.key_size < MIN_RSA_BITS:
        return f"RSA key of {key.key_size} bits is too short (need {MIN_RSA_BITS})"
    return None
