"""What a joining node must share with the cluster: network ranges, domain, API port, version."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from microkube.config.node import NodeConfig
from microkube.paths import Paths


@dataclass(frozen=True)
class ClusterSettings:
    """The settings every node of the cluster must agree on."""

    service_cidr: str
    pod_cidr: str
    cluster_domain: str
    dns_ip: str
    api_port: int
    kubernetes_version: str | None  # "v1.36.3"; None if this node cannot tell

    @classmethod
    def of(cls, paths: Paths, config: NodeConfig) -> ClusterSettings:
        """This node's settings: from its configuration and its installed Kubernetes."""
        return cls(
            service_cidr=config.service_cidr,
            pod_cidr=config.pod_cidr,
            cluster_domain=config.cluster_domain,
            dns_ip=config.dns_ip,
            api_port=config.api_port,
            kubernetes_version=kubernetes_version(paths),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def kubernetes_version(paths: Paths) -> str | None:
    """The Kubernetes version this node runs: from the install record, else the manifest.

    None when neither can be read (a checkout whose components were never built
    and whose manifest is gone).
    """
    try:
        doc = json.loads(paths.versions_file.read_text())
        version = doc["components"]["kubernetes"]["version"]
        if isinstance(version, str) and version:
            return version
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from microkube.components.manifest import load
    from microkube.errors import MicrokubeError

    try:
        return next((c.version for c in load().components if c.name == "kubernetes"), None)
    except (MicrokubeError, OSError):
        return None
