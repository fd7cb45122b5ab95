"""An addon object the API server refused because another object holds what it needs.

The server says "provided IP is already allocated" without saying who holds
it. These functions find the holder among the cluster's Services and say,
in one line, which object it is and what to do. Pure: the caller reads the
Services and passes them in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# 'Service "kube-dns" is invalid: spec.clusterIPs: Invalid value: ["10.152.183.10"]:
#  failed to allocate IP 10.152.183.10: provided IP is already allocated'
_IP_TAKEN = re.compile(r'(?P<kind>\w+) "(?P<name>[^"]+)" is invalid: spec\.clusterIPs?\b.*?'
                       r'(?:allocate IP |Invalid value: \W*)(?P<ip>[0-9a-fA-F.:]+)'
                       r'.*already allocated')
# 'Service "registry" is invalid: spec.ports[0].nodePort: Invalid value: 32000:
#  provided port is already allocated'
_PORT_TAKEN = re.compile(r'(?P<kind>\w+) "(?P<name>[^"]+)" is invalid: '
                         r'spec\.ports\[\d+\]\.nodePort: Invalid value: (?P<port>\d+)'
                         r'.*already allocated')


@dataclass(frozen=True)
class Taken:
    """What a refused object needed: a cluster IP or a node port, and the object that asked."""

    kind: str
    name: str
    cluster_ip: str | None = None
    node_port: int | None = None

    def wanted(self) -> str:
        return (f"the cluster IP {self.cluster_ip}" if self.cluster_ip is not None
                else f"node port {self.node_port}")


def taken(message: str) -> Taken | None:
    """What the API server's refusal says was already allocated; None for another refusal."""
    m = _IP_TAKEN.search(message)
    if m:
        return Taken(m["kind"], m["name"], cluster_ip=m["ip"])
    m = _PORT_TAKEN.search(message)
    if m:
        return Taken(m["kind"], m["name"], node_port=int(m["port"]))
    return None


def holders(want: Taken, services: Iterable[dict[str, Any]]) -> list[str]:
    """'namespace/name' of each Service (from ``kubectl get services -A -o json`` items)
    that holds what ``want`` asked for, sorted."""
    found = []
    for svc in services:
        meta, spec = svc.get("metadata", {}), svc.get("spec", {})
        if want.cluster_ip is not None:
            ips = set(spec.get("clusterIPs") or []) | {spec.get("clusterIP")}
            hit = want.cluster_ip in ips
        else:
            hit = any(p.get("nodePort") == want.node_port for p in spec.get("ports") or [])
        if hit:
            found.append(f"{meta.get('namespace', 'default')}/{meta.get('name')}")
    return sorted(found)


def explain(addon: str, want: Taken, namespace: str | None, held_by: list[str]) -> str:
    """One line in the user's terms: what the addon's object needs, who holds it, what to do.

    ``namespace`` is the refused object's namespace (None: cluster-scoped or unknown).
    """
    who = f"{want.kind} {namespace}/{want.name}" if namespace else f"{want.kind} {want.name}"
    if not held_by:
        return (f"{addon}: {who} needs {want.wanted()}, which is already allocated, though no "
                f"Service shows it; free it, then run 'microkube enable {addon}' again")
    ns, name = held_by[0].split("/", 1)
    others = f" (and {', '.join(held_by[1:])})" if len(held_by) > 1 else ""
    return (f"{addon}: {who} needs {want.wanted()}, which Service {held_by[0]}{others} holds; "
            f"delete that Service ('microkube kubectl delete service -n {ns} {name}') or give it "
            f"another {'address' if want.cluster_ip is not None else 'port'}, then run "
            f"'microkube enable {addon}' again")
