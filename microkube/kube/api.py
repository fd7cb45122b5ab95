"""The fast REST half of the Kubernetes client: the few reads microkube itself makes.

``status`` must answer in well under half a second, so this speaks to the
API server with the standard library and the admin credentials, instead
of starting kubectl or importing a full client (``requests`` alone costs
~100 ms of import time).
"""

from __future__ import annotations

import base64
import os
import ssl
from pathlib import Path
from typing import Any

from microkube.errors import MicrokubeError
from microkube.fsutil import write_private
from microkube.paths import Paths
from microkube.probes import HttpConnection, json_of


def client_pem(kubeconfig: Path) -> Path:
    """A cert+key PEM beside the kubeconfig, refreshed when the kubeconfig changes."""
    pem = kubeconfig.with_suffix(".pem")
    if pem_is_current(kubeconfig):
        return pem
    from microkube import yamlerrors

    try:
        cfg = yamlerrors.parse(kubeconfig.read_text())
        user = cfg["users"][0]["user"]
        data = base64.b64decode(user["client-certificate-data"]) + base64.b64decode(
            user["client-key-data"])
    except (OSError, KeyError, IndexError, TypeError, ValueError) as e:
        raise MicrokubeError(f"{kubeconfig}: cannot read client credentials ({e})") from None
    write_private(pem, data)
    os.utime(pem, (kubeconfig.stat().st_mtime,) * 2)
    return pem


def pem_is_current(kubeconfig: Path) -> bool:
    """Whether the PEM that client_pem keeps beside ``kubeconfig`` is up to date with it;
    False when either file is missing."""
    try:
        return (kubeconfig.with_suffix(".pem").stat().st_mtime
                >= kubeconfig.stat().st_mtime)
    except OSError:
        return False


def admin_tls_context(paths: Paths) -> ssl.SSLContext:
    """A client TLS context that trusts the cluster CA and presents the admin's certificate."""
    return user_tls_context(paths, "admin")


def user_tls_context(paths: Paths, user: str) -> ssl.SSLContext:
    """A client TLS context that trusts the cluster CA and presents ``user``'s certificate.

    ``user`` names a kubeconfig in the credentials directory ("kubelet", "flannel").
    """
    context = ssl.create_default_context(cafile=str(paths.pki.ca.cert))
    context.load_cert_chain(str(client_pem(paths.kubeconfig(user))))
    return context


class KubeApi:
    """GETs against one API server (``server``: "https://host:port") over mutual TLS, on one
    connection kept open between them (one TLS handshake for status's two requests)."""

    def __init__(self, server: str, context: ssl.SSLContext, timeout: float = 2.0) -> None:
        self.server = server.rstrip("/")
        self.timeout = timeout  # seconds, per request
        self.context = context
        self._conn: HttpConnection | None = None

    def _request(self, method: str, path: str) -> tuple[int, bytes]:
        if self._conn is None:
            self._conn = HttpConnection(self.server, context=self.context, timeout=self.timeout)
        return self._conn.request(method, path)

    def close(self) -> None:
        """Close the kept connection (the next request opens one again)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @classmethod
    def for_admin(cls, paths: Paths, timeout: float = 2.0) -> KubeApi:
        """The node's own API server as its admin. Raises UsageError when the node was
        never set up, MicrokubeError when the admin credentials cannot be read."""
        return cls.for_user(paths, "admin", timeout)

    @classmethod
    def for_user(cls, paths: Paths, user: str, timeout: float = 2.0) -> KubeApi:
        """The API server this node's clients use (a worker's: its control plane's), as
        ``user`` (a kubeconfig's name: "kubelet", "flannel"). Raises UsageError when the
        node was never set up, MicrokubeError when the credentials cannot be read."""
        from microkube.config import node

        api_url = node.load(paths.state_file, paths.yaml_cache_dir).api_url
        return cls(api_url, user_tls_context(paths, user), timeout)

    def get(self, path: str) -> Any:
        """The decoded JSON at ``path`` ("/api/v1/nodes/x"), or None unless it answers 200."""
        return json_of(*self._request("GET", path))

    def delete(self, path: str) -> int:
        """DELETE ``path``; the HTTP status (200 or 202 deleted, 404 absent), 0 when nothing answers."""
        return self._request("DELETE", path)[0]

    def status_code(self, path: str) -> int:
        """The HTTP status of GET ``path``; 0 when nothing answers."""
        return self._request("GET", path)[0]

    def node_ready(self, name: str) -> bool:
        """Whether Node ``name`` has the condition Ready=True."""
        node = self.get(f"/api/v1/nodes/{name}")
        if not isinstance(node, dict):
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
