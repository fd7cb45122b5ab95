"""Kubeconfig files: render one for a client certificate, and read one back.

Credentials are either embedded (``*-data``, one self-contained file: what
microkube writes) or referenced by path (for tools that want the PEM files).
Pass bytes to embed, a Path to reference.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from microkube.pki.errors import PkiError

if TYPE_CHECKING:  # cryptography only where a credential is parsed: see KubeconfigInfo
    from cryptography import x509

    from microkube.pki.keys import PrivateKey

# libyaml when present: it makes writing and reading six kubeconfigs ~5x faster.
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CLUSTER_NAME = "microkube-cluster"
CONTEXT_NAME = "microkube"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _field(key: str, value: bytes | Path) -> dict[str, str]:
    """``key-data: <base64>`` for embedded PEM, ``key: <path>`` for a file."""
    if isinstance(value, Path):
        return {key: str(value)}
    return {f"{key}-data": _b64(value)}


def render_kubeconfig(
    *,
    server: str,
    ca: bytes | Path,
    user: str,
    cert: bytes | Path,
    key: bytes | Path,
    cluster_name: str = CLUSTER_NAME,
    context_name: str = CONTEXT_NAME,
) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster_name, "cluster": {**_field("certificate-authority", ca),
                                               "server": server}},
        ],
        "contexts": [
            {"name": context_name, "context": {"cluster": cluster_name, "user": user}},
        ],
        "current-context": context_name,
        "preferences": {},
        "users": [
            {"name": user, "user": {**_field("client-certificate", cert),
                                    **_field("client-key", key)}},
        ],
    }
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False)


@dataclass(frozen=True)
class KubeconfigInfo:
    """What the current context of a kubeconfig says; PEM bytes, files already read.

    Parsing the credentials loads cryptography, here and not at import: a worker's
    supervisor reads its kubeconfigs at each start of its load balancer (pki/workerfiles.py)
    and would keep cryptography (~10 MB PSS) for the node's lifetime.
    """

    path: Path
    server: str
    ca_pem: bytes | None
    cert_pem: bytes | None
    key_pem: bytes | None

    def client_cert(self) -> x509.Certificate | None:
        from microkube.pki.certs import parse_cert

        if self.cert_pem is None:
            return None
        return parse_cert(self.cert_pem, f"{self.path} (client certificate)")

    def client_key(self) -> PrivateKey | None:
        from microkube.pki.keys import parse_private_key

        if self.key_pem is None:
            return None
        return parse_private_key(self.key_pem, f"{self.path} (client key)")


def _named(items: Any, name: str, kind: str, path: Path) -> dict[str, Any]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(kind)
            if isinstance(body, dict):
                return body
    raise PkiError(f"{path}: no {kind} named {name!r}")


def _credential(body: dict[str, Any], key: str, path: Path) -> bytes | None:
    """The PEM for ``key``: decoded from ``key-data`` or read from the file ``key``."""
    data = body.get(f"{key}-data")
    if isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            raise PkiError(f"{path}: {key}-data is not base64") from None
    ref = body.get(key)
    if isinstance(ref, str):
        file = Path(ref) if Path(ref).is_absolute() else path.parent / ref
        try:
            return file.read_bytes()
        except OSError as e:
            raise PkiError(f"{path}: cannot read {key} {file}: {e.strerror}") from None
    return None


def read_kubeconfig(path: Path) -> KubeconfigInfo:
    try:
        doc = yaml.load(path.read_text(), Loader=_Loader)
    except OSError as e:
        raise PkiError(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError:
        raise PkiError(f"{path}: not valid YAML") from None
    if not isinstance(doc, dict):
        raise PkiError(f"{path}: not a kubeconfig")
    context = _named(doc.get("contexts"), str(doc.get("current-context")), "context", path)
    cluster = _named(doc.get("clusters"), str(context.get("cluster")), "cluster", path)
    user = _named(doc.get("users"), str(context.get("user")), "user", path)
    server = cluster.get("server")
    if not isinstance(server, str):
        raise PkiError(f"{path}: the cluster has no server")
    return KubeconfigInfo(
        path=path,
        server=server,
        ca_pem=_credential(cluster, "certificate-authority", path),
        cert_pem=_credential(user, "client-certificate", path),
        key_pem=_credential(user, "client-key", path),
    )
