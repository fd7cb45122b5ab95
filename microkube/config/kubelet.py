"""Edits to the kubelet's config file that addons make (cluster DNS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from microkube.errors import UsageError
from microkube.fsutil import write_atomic
from microkube.paths import Paths


def _config_path(paths: Paths) -> Path:
    return paths.args_dir / "kubelet.yaml"


def load(paths: Paths) -> dict[str, Any]:
    path = _config_path(paths)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"{path}: cannot read the kubelet configuration ({e})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a KubeletConfiguration mapping")
    return data


def set_cluster_dns(paths: Paths, dns_ip: str | None, domain: str | None = None) -> bool:
    """Point pods at the cluster DNS (None removes it); True if the file changed."""
    cfg = load(paths)
    before = dict(cfg)
    if dns_ip:
        cfg["clusterDNS"] = [dns_ip]
    else:
        cfg.pop("clusterDNS", None)
    if domain:
        cfg["clusterDomain"] = domain
    if cfg == before:
        return False
    header = "# kubelet settings that upstream accepts only in a config file.\n"
    write_atomic(_config_path(paths), header + yaml.safe_dump(cfg, sort_keys=False))
    return True
