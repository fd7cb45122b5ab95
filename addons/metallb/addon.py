"""metallb: LoadBalancer Services get an address from the pool the user gave, in L2 mode.

The controller hands out the addresses; the speaker on each node answers ARP
(IPv4) and NDP (IPv6) for them on the node's links, so a host on the same link
reaches the Service. The pool is checked here, before anything is applied:
MetalLB runs without its admission webhooks.
"""

from __future__ import annotations

import json

from microkube.addons.context import AddonContext
from microkube.addons.ipranges import IPRange, clashes, parse_ranges
from microkube.errors import UsageError

NAMESPACE = "metallb-system"
POOL_TEMPLATE = "40-pool.yaml.j2"
POOL_ANNOTATION = "metallb.io/ip-allocated-from-pool"  # set by the controller
EXAMPLE = "microkube enable metallb:10.64.140.43-10.64.140.49"


def _ranges(addresses: list[str] | None) -> list[IPRange]:
    return parse_ranges(",".join(addresses)) if addresses else []


def validate(ctx: AddonContext) -> None:
    """The pool is given and lies outside the cluster's own networks (UsageError otherwise)."""
    addresses: list[str] | None = ctx.args.get("addresses")
    if not addresses:
        raise UsageError(f"metallb needs the addresses it may give out, e.g. {EXAMPLE}")
    clash = clashes(_ranges(addresses), {"pod network": ctx.node.pod_cidr,
                                         "service network": ctx.node.service_cidr})
    if clash:
        raise UsageError(f"metallb: --addresses: {clash}")


def enable(ctx: AddonContext) -> None:
    base = [t for t in ctx.templates() if t != POOL_TEMPLATE]
    ctx.apply(ctx.manifest(*base))
    # The pool's kinds exist only once their definitions are established.
    ctx.kubectl.run(["wait", "--for=condition=Established", "--timeout=60s",
                     *(f"crd/{r.name}" for r in ctx.objects
                       if r.kind == "CustomResourceDefinition")],
                    timeout=90, what="waiting for MetalLB's resource definitions")
    ctx.apply(ctx.manifest(POOL_TEMPLATE))
    ctx.wait_rollout("deployment/controller", NAMESPACE)
    ctx.wait_rollout("daemonset/speaker", NAMESPACE)
    ranges = _ranges(ctx.args["addresses"])
    total = sum(r.size for r in ranges)
    ctx.say(f"LoadBalancer Services get addresses from {', '.join(r.text for r in ranges)} "
            f"({total} address{'es' if total != 1 else ''}), announced on {ctx.node.node_ip}'s link")


def disable(ctx: AddonContext) -> None:
    pool = _previous_addresses(ctx)
    # Rendering the templates (when nothing was recorded) needs the pool's value.
    ctx.args.setdefault("addresses", pool)
    ctx.delete(ctx.made_objects())
    released = _release(ctx, _ranges(pool))
    if released:
        ctx.say(f"released {', '.join(released)}; those Services wait for an address again")


def _previous_addresses(ctx: AddonContext) -> list[str]:
    if ctx.previous is None:
        return []
    return list(ctx.previous.arguments.get("addresses") or [])


def _release(ctx: AddonContext, ranges: list[IPRange]) -> list[str]:
    """Clear the status of Services still holding an address of ``ranges`` (the controller,
    which would have done so, is gone); returns the addresses released."""
    if not ranges:
        return []
    services = json.loads(ctx.kubectl.run(["get", "services", "-A", "-o", "json"],
                                          what="reading services"))["items"]
    released: list[str] = []
    for svc in services:
        ingress = (svc.get("status", {}).get("loadBalancer") or {}).get("ingress") or []
        held = [i["ip"] for i in ingress if any(r.contains(i.get("ip", "")) for r in ranges)]
        if not held:
            continue
        name, namespace = svc["metadata"]["name"], svc["metadata"]["namespace"]
        ctx.kubectl.run(["patch", "service", name, "-n", namespace, "--subresource=status",
                         "--type=merge", "-p", '{"status":{"loadBalancer":{"ingress":null}}}'],
                        what=f"releasing {', '.join(held)}")
        ctx.kubectl.run(["annotate", "service", name, "-n", namespace, f"{POOL_ANNOTATION}-"],
                        what=f"releasing {', '.join(held)}")
        released += held
    return released
