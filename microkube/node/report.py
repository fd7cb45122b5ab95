"""Text renderings of the node's status: MicroK8s's layouts, plus daemon states.

Every format answers in every state: a node that does not run is a human
line (pretty), ``microkube is not running…`` (short) or YAML with
``microkube.running: false`` and a message (yaml).
"""

from __future__ import annotations

from microkube.node.status import NodeStatus

FORMATS = ("pretty", "yaml", "short")
RENEW_HINT_DAYS = 30
YAML_WIDTH = 4096  # a message stays on one line


def render_status(st: NodeStatus, fmt: str) -> str:
    """``st`` in one of :data:`FORMATS`, newline-terminated; ValueError for another format."""
    if fmt == "yaml":
        import yaml  # here: the other formats need no YAML

        return yaml.safe_dump(st.as_dict(), sort_keys=False, width=YAML_WIDTH)
    if fmt == "pretty":
        return "\n".join(_pretty(st)) + "\n"
    if fmt == "short":
        return "\n".join(_short(st)) + "\n"
    raise ValueError(f"unknown status format {fmt!r}")


def _headline(st: NodeStatus) -> str:
    if not st.running:
        return st.message
    return "microkube is running" + ("" if st.ready else f" ({st.message})")


def _pretty(st: NodeStatus) -> list[str]:
    lines = [_headline(st)]
    if not st.running:
        if st.daemons:
            lines.append("daemons:")
            lines += [f"  {name:<24} {state}" for name, state in st.daemons.items()]
        return lines
    if st.role == "worker":
        lines.append(f"role: worker of the control plane at {st.control_plane}")
        if st.load_balancer is not None:
            lb = st.load_balancer
            lines.append(f"api-load-balancer: using {lb.current or 'none'} "
                         f"({len(lb.healthy)} of {len(lb.servers)} API servers answer: "
                         f"{' '.join(lb.servers)})")
        lines.append(_network_policy(st))
        lines.append("daemons:")
        lines += [f"  {name:<24} {state}" for name, state in st.daemons.items()]
        return lines
    lines.append(f"high-availability: {'yes' if st.high_availability else 'no'}")
    if st.shared_datastore:
        lines.append(f"  control planes: {' '.join(st.control_planes) or 'none'} (sharing "
                     "the external datastore: high availability rests on it)")
    else:
        lines += [f"  datastore voter nodes: {' '.join(st.voters) or 'none'}",
                  f"  datastore standby nodes: {' '.join(st.standbys) or 'none'}"]
    lines.append(_network_policy(st))
    if st.datastore:
        where = f" at {st.datastore_endpoint}" if st.datastore_endpoint != st.datastore else ""
        rests = " (high availability rests on it)" if where else ""
        lines.append(f"datastore: {st.datastore}{where}{rests}")
        if st.datastore_problem:
            lines.append(f"  {st.datastore_problem}")
    if st.cert_days_left is not None:
        warn = ("  <- renew with 'microkube refresh-certs'"
                if st.cert_days_left < RENEW_HINT_DAYS else "")
        lines.append(f"certificates: valid for {st.cert_days_left} more days "
                     f"(first to expire: {st.cert_earliest}){warn}")
    if st.nodes:
        lines.append("nodes:")
        lines += [f"  {name:<24} {role:<14} {'Ready' if ok else 'NotReady':<9} "
                  f"datastore: {st.datastore_role(name)}" for name, role, ok in st.nodes]
    lines.append("daemons:")
    lines += [f"  {name:<24} {state}" for name, state in st.daemons.items()]
    pending = " (first pass not done yet)" if st.running and st.manifests is None else ""
    lines.append(f"manifests: {st.manifests_dir}{pending}")
    lines += [f"  {name}: failed: {message}" for name, message in st.failed_manifests()]
    lines.append("addons:")
    for group in ("enabled", "disabled"):
        lines.append(f"  {group}:")
        lines += [f"    {a.name:<20} # ({a.repository}) {a.description}"
                  for a in st.addons if a.status == group]
    return lines


def _network_policy(st: NodeStatus) -> str:
    return f"network policy enforced: {'yes' if st.network_policy else 'no'}"


def _short(st: NodeStatus) -> list[str]:
    """MicroK8s's short format: a headline, then 'repository/name: enabled|disabled'."""
    lines = [_headline(st)]
    if not st.running:
        return lines
    lines.append("addons:")
    for group in ("enabled", "disabled"):
        lines += [f"  {a.repository}/{a.name}: {a.status}" for a in st.addons if a.status == group]
    return lines
