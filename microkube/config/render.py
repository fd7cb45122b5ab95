"""Daemon configuration files rendered from the node's settings.

Files a user may edit (containerd.toml, kubelet.yaml, the flannel network)
are written only when missing; a user's change survives restarts.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from microkube.config.node import NodeConfig
from microkube.fsutil import write_atomic
from microkube.images.names import PAUSE_IMAGE
from microkube.paths import Paths


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("microkube.config", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(template: str, **values: Any) -> str:
    return _env().get_template(template).render(**values)


def cgroup_v1() -> bool:
    """True on a host without the unified cgroup v2 hierarchy."""
    return not Path("/sys/fs/cgroup/cgroup.controllers").exists()


CAP_SYS_RESOURCE = 24


def can_lower_oom_score() -> bool:
    """True if we hold CAP_SYS_RESOURCE (some VMs and containers withhold it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1)
    return False


def host_resolv_conf() -> str:
    """The resolv.conf pods inherit; systemd-resolved's stub would loop."""
    upstream = Path("/run/systemd/resolve/resolv.conf")
    return str(upstream) if upstream.exists() else "/etc/resolv.conf"


def write_if_missing(path: Path, text: str) -> bool:
    if path.exists():
        return False
    write_atomic(path, text)
    return True


def ensure_configs(paths: Paths, node: NodeConfig) -> list[str]:
    """Write the daemons' config files that do not exist yet; return their names."""
    values = {"paths": paths, "node": node}
    wanted = {
        paths.args_dir / "containerd.toml": render(
            "containerd.toml.j2", sandbox_image=PAUSE_IMAGE,
            restrict_oom_score_adj=not can_lower_oom_score(), **values),
        paths.args_dir / "kubelet.yaml": render(
            "kubelet.yaml.j2", cgroup_v1=cgroup_v1(), cluster_dns=None,
            resolv_conf=host_resolv_conf(), **values),
        paths.args_dir / "flannel-network-mgr-config": render(
            "flannel-network-mgr-config.j2", **values),
        paths.cni_conf_dir / "10-flannel.conflist": render("10-flannel.conflist.j2", **values),
    }
    if node.registry_mirror:
        wanted[paths.registry_hosts_dir / "_default" / "hosts.toml"] = render(
            "registry-default-hosts.toml.j2", mirror=node.registry_mirror)
    return [p.name for p, text in wanted.items() if write_if_missing(p, text)]
