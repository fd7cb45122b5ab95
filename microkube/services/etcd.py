"""etcd, the datastore: a Raft member that joining nodes grow into an HA set."""

from __future__ import annotations

from typing import ClassVar

from microkube.probes import http_json, tls_context
from microkube.services.base import Daemon, NodeContext


class Etcd(Daemon):
    name = "etcd"
    binary = "etcd"
    stop_timeout: ClassVar[float] = 15.0

    def prepare(self, ctx: NodeContext) -> None:
        ctx.paths.datastore_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def ready(self, ctx: NodeContext) -> bool:
        pki = ctx.paths.pki
        context = tls_context(pki.etcd_ca.cert, pki.etcd_apiserver_client.cert,
                              pki.etcd_apiserver_client.key)
        health = http_json(f"https://127.0.0.1:{ctx.paths.ports.datastore_client}/health",
                           context=context)
        return isinstance(health, dict) and health.get("health") == "true"

    def after_ready(self, ctx: NodeContext) -> None:
        """Record this member's peer URL at the node's address if it moved (datastore/peermove.py).

        A datastore that does not answer is logged, not raised: the snap's daemons call this
        from each daemon that waits on etcd, and must not exit for it.
        """
        from microkube.datastore.membership import MembershipError
        from microkube.datastore.peermove import update_local

        try:
            fix = update_local(ctx.paths, ctx.node.node_name, ctx.node.node_ip)
        except MembershipError as e:
            print(f"could not check this member's peer URL: {e}", flush=True)
            return
        if fix is not None:
            print(fix.line(), flush=True)
