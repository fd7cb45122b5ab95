"""Text renderings of the node's status: MicroK8s's layout, plus daemon states."""

from __future__ import annotations

import yaml

from microkube.node.status import NodeStatus


def render_status(st: NodeStatus, fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(st.as_dict(), sort_keys=False)
    ha = "yes" if len(st.datastore_members) >= 3 else "no"
    lines = [
        "microkube is running" + ("" if st.ready else " (node not Ready yet)"),
        f"high-availability: {ha}",
        f"  datastore master nodes: {' '.join(st.datastore_members) or 'none'}",
        "  datastore standby nodes: none",
    ]
    if st.cert_days_left is not None:
        warn = "  <- renew with 'microkube refresh-certs'" if st.cert_days_left < 30 else ""
        lines.append(f"certificates: valid for {st.cert_days_left} more days "
                     f"(first to expire: {st.cert_earliest}){warn}")
    if fmt == "pretty":
        lines.append("daemons:")
        lines += [f"  {name:<24} {state}" for name, state in st.daemons.items()]
        lines.append("addons:")
        for group in ("enabled", "disabled"):
            lines.append(f"  {group}:")
            lines += [f"    {a}" for a in st.addons.get(group, [])]
    else:  # short
        lines.append("addons:")
        for group in ("enabled", "disabled"):
            lines += [f"  {a}: {group}" for a in st.addons.get(group, [])]
    return "\n".join(lines) + "\n"
