"""etcd, the datastore: a Raft member that joining nodes grow into an HA set."""

from __future__ import annotations

from typing import ClassVar

from microkube.services.base import Daemon, NodeContext
from microkube.services.probes import http_json, tls_context


class Etcd(Daemon):
    name = "etcd"
    binary = "etcd"
    stop_timeout: ClassVar[float] = 15.0

    def prepare(self, ctx: NodeContext) -> None:
        ctx.paths.datastore_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def ready(self, ctx: NodeContext) -> bool:
        certs = ctx.paths.certs_dir / "etcd"
        context = tls_context(certs / "ca.crt", certs / "apiserver-client.crt",
                              certs / "apiserver-client.key")
        health = http_json("https://127.0.0.1:12379/health", context=context)
        return isinstance(health, dict) and health.get("health") == "true"
