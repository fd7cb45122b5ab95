"""A small, fast client for the few API calls microkube itself makes.

``status`` must answer in well under half a second, so this speaks to the
API server with the standard library and the admin credentials, instead
of starting kubectl or importing a full client.
"""

from __future__ import annotations

import base64
import os
import ssl
from pathlib import Path
from typing import Any

import yaml

from microkube.errors import MicrokubeError
from microkube.fsutil import write_private
from microkube.services.probes import http_get, http_json


def client_pem(kubeconfig: Path) -> Path:
    """A cert+key PEM beside the kubeconfig, refreshed when the kubeconfig changes."""
    pem = kubeconfig.with_suffix(".pem")
    if pem.exists() and pem.stat().st_mtime >= kubeconfig.stat().st_mtime:
        return pem
    try:
        cfg = yaml.load(kubeconfig.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        user = cfg["users"][0]["user"]
        data = base64.b64decode(user["client-certificate-data"]) + base64.b64decode(
            user["client-key-data"])
    except (OSError, KeyError, IndexError, TypeError, ValueError, yaml.YAMLError) as e:
        raise MicrokubeError(f"{kubeconfig}: cannot read client credentials ({e})") from None
    write_private(pem, data)
    os.utime(pem, (kubeconfig.stat().st_mtime,) * 2)
    return pem


class KubeApi:
    def __init__(self, server: str, ca: Path, kubeconfig: Path, timeout: float = 2.0) -> None:
        self.server = server.rstrip("/")
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.load_cert_chain(str(client_pem(kubeconfig)))

    def get(self, path: str) -> Any:
        return http_json(self.server + path, context=self.context, timeout=self.timeout)

    def status_code(self, path: str) -> int:
        return http_get(self.server + path, context=self.context, timeout=self.timeout)[0]

    def node_ready(self, name: str) -> bool:
        node = self.get(f"/api/v1/nodes/{name}")
        if not isinstance(node, dict):
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
