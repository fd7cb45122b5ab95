"""containerd with runc: the container runtime, and the images shipped with microkube."""

from __future__ import annotations

from microkube.probes import unix_socket_accepts
from microkube.services.base import Daemon, NodeContext


class Containerd(Daemon):
    name = "containerd"
    binary = "containerd"

    def prepare(self, ctx: NodeContext) -> None:
        for d in (ctx.paths.containerd_root, ctx.paths.containerd_state):
            d.mkdir(parents=True, exist_ok=True, mode=0o711)

    def ready(self, ctx: NodeContext) -> bool:
        return unix_socket_accepts(ctx.paths.containerd_socket)

    def after_ready(self, ctx: NodeContext) -> None:
        # Pods must never need a registry: import every shipped archive containerd lacks.
        from microkube.images.importer import import_missing

        archives = sorted(ctx.paths.images_dir.glob("*.tar"))
        if archives:
            import_missing(ctx.paths.binary("ctr"), ctx.paths.containerd_socket, archives)
