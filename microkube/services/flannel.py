"""flanneld: the pod network, with the Kubernetes API as its subnet manager."""

from __future__ import annotations

import contextlib

from microkube.probes import http_ok
from microkube.services.base import Daemon, NodeContext


class Flanneld(Daemon):
    name = "flanneld"
    binary = "flanneld"
    after = ("kubelite",)

    def can_start(self, ctx: NodeContext) -> bool:
        # flanneld exits if its Node has no pod CIDR yet; wait rather than crash-loop.
        from microkube.kube.api import KubeApi

        # As the kubelet: it may read its own Node, and a worker has no admin credentials.
        node = KubeApi.for_user(ctx.paths, "kubelet", timeout=1.0).get(
            f"/api/v1/nodes/{ctx.node.node_name}")
        return isinstance(node, dict) and bool(node.get("spec", {}).get("podCIDR"))

    def prepare(self, ctx: NodeContext) -> None:
        # A subnet file from an earlier run would let pods start before the lease is renewed.
        with contextlib.suppress(FileNotFoundError):
            ctx.paths.flannel_subnet_file.unlink()
        ctx.paths.flannel_subnet_file.parent.mkdir(parents=True, exist_ok=True)

    def environment(self, ctx: NodeContext) -> dict[str, str]:
        env = super().environment(ctx)
        env["NODE_NAME"] = ctx.node.node_name  # how flannel finds its Node outside a pod
        return env

    def ready(self, ctx: NodeContext) -> bool:
        return ctx.paths.flannel_subnet_file.exists() and http_ok(
            f"http://127.0.0.1:{ctx.paths.ports.flannel_healthz}/healthz")
