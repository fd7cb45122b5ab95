"""The Kubernetes daemons, all run from the one multicall ``kube`` binary."""

from __future__ import annotations

from microkube.probes import http_ok
from microkube.services.base import Daemon, NodeContext


class KubeApiserver(Daemon):
    name = "kube-apiserver"
    binary = "kube-apiserver"
    after = ("etcd",)

    def ready(self, ctx: NodeContext) -> bool:
        # As the admin: with authorization AlwaysAllow the API server refuses anonymous requests.
        from microkube.kube.api import admin_tls_context

        return http_ok(f"{ctx.node.api_url}/readyz", context=admin_tls_context(ctx.paths))

    def after_ready(self, ctx: NodeContext) -> None:
        # The roles our host daemons (flannel) need; idempotent, so every start re-applies them.
        from microkube.config.render import render
        from microkube.kube.kubectl import Kubectl

        Kubectl(ctx.paths).apply(render("bootstrap-rbac.yaml.j2", flannel_user="flannel"),
                                 what="applying the bootstrap RBAC")


class KubeControllerManager(Daemon):
    name = "kube-controller-manager"
    binary = "kube-controller-manager"
    after = ("kube-apiserver",)

    def ready(self, ctx: NodeContext) -> bool:
        # Its serving certificate is self-signed and it listens on loopback only.
        return http_ok(f"https://127.0.0.1:{ctx.paths.ports.controller_manager}/healthz")


class KubeScheduler(Daemon):
    name = "kube-scheduler"
    binary = "kube-scheduler"
    after = ("kube-apiserver",)

    def ready(self, ctx: NodeContext) -> bool:
        return http_ok(f"https://127.0.0.1:{ctx.paths.ports.scheduler}/healthz")


class Kubelet(Daemon):
    name = "kubelet"
    binary = "kubelet"
    after = ("kube-apiserver", "containerd")

    def prepare(self, ctx: NodeContext) -> None:
        ctx.paths.kubelet_root.mkdir(parents=True, exist_ok=True)
        if ctx.node.cgroup_root:
            from microkube.services.cgroups import ensure_cgroup

            ensure_cgroup(ctx.node.cgroup_root)

    def ready(self, ctx: NodeContext) -> bool:
        return http_ok(f"http://127.0.0.1:{ctx.paths.ports.kubelet_healthz}/healthz")

    def cleanup(self, ctx: NodeContext) -> None:
        from microkube.services.cleanup import unmount_below

        unmount_below(ctx.paths.kubelet_root)
        if ctx.node.cgroup_root:
            from microkube.services.cgroups import remove_cgroup

            remove_cgroup(ctx.node.cgroup_root)


class KubeProxy(Daemon):
    name = "kube-proxy"
    binary = "kube-proxy"
    after = ("kube-apiserver",)

    def ready(self, ctx: NodeContext) -> bool:
        return http_ok(f"http://127.0.0.1:{ctx.paths.ports.kube_proxy_healthz}/healthz")
