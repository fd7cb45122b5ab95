"""The Kubernetes daemons, all run from the one multicall ``kube`` binary."""

from __future__ import annotations

from microkube.services.base import Daemon, NodeContext
from microkube.services.probes import http_ok, tls_context


class KubeApiserver(Daemon):
    name = "kube-apiserver"
    binary = "kube-apiserver"
    after = ("etcd",)

    def ready(self, ctx: NodeContext) -> bool:
        # As the admin: with authorization AlwaysAllow the API server refuses anonymous requests.
        from microkube.kubeapi import client_pem

        context = tls_context(ctx.paths.certs_dir / "ca.crt", client_pem(ctx.paths.kubeconfig("admin")))
        return http_ok(f"{ctx.node.api_url}/readyz", context=context)

    def after_ready(self, ctx: NodeContext) -> None:
        # The roles our host daemons (flannel) need; idempotent, so every start re-applies them.
        from microkube import kubectl
        from microkube.config.render import render

        kubectl.apply(ctx.paths, render("bootstrap-rbac.yaml.j2", flannel_user="flannel"))


class KubeControllerManager(Daemon):
    name = "kube-controller-manager"
    binary = "kube-controller-manager"
    after = ("kube-apiserver",)

    def ready(self, ctx: NodeContext) -> bool:
        # Its serving certificate is self-signed and it listens on loopback only.
        return http_ok("https://127.0.0.1:10257/healthz")


class KubeScheduler(Daemon):
    name = "kube-scheduler"
    binary = "kube-scheduler"
    after = ("kube-apiserver",)

    def ready(self, ctx: NodeContext) -> bool:
        return http_ok("https://127.0.0.1:10259/healthz")


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
        return http_ok("http://127.0.0.1:10248/healthz")

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
        return http_ok("http://127.0.0.1:10256/healthz")
