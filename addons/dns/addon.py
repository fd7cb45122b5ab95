"""dns: CoreDNS at the cluster DNS address, and the kubelet pointed at it."""

from __future__ import annotations

from microkube.addons.context import AddonContext
from microkube.config.kubelet import set_cluster_dns

# Inside the CoreDNS pod (dnsPolicy: Default) this is the node's resolver list.
HOST_RESOLVERS = "/etc/resolv.conf"


def _upstream(ctx: AddonContext) -> str:
    servers: list[str] | None = ctx.args.get("upstream")
    return " ".join(servers) if servers else HOST_RESOLVERS


def enable(ctx: AddonContext) -> None:
    upstream = _upstream(ctx)
    ctx.apply(ctx.manifest(upstream=upstream))
    if set_cluster_dns(ctx.paths, ctx.node.dns_ip, ctx.node.cluster_domain):
        ctx.step("restarting the kubelet,")
        ctx.restart_daemon("kubelet")
    ctx.wait_rollout("deployment/coredns", "kube-system")
    where = "the host's resolvers" if upstream == HOST_RESOLVERS else upstream
    ctx.say(f"pods resolve through {ctx.node.dns_ip} (domain {ctx.node.cluster_domain}); "
            f"other names go to {where}")


def disable(ctx: AddonContext) -> None:
    ctx.delete(ctx.made_objects(upstream=HOST_RESOLVERS))
    if set_cluster_dns(ctx.paths, None):
        ctx.step("restarting the kubelet,")
        ctx.restart_daemon("kubelet")
