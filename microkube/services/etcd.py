"""etcd, the datastore: a Raft member that joining nodes grow into an HA set."""

from __future__ import annotations

from typing import ClassVar

from microkube.probes import http_json, tcp_accepts, tls_context
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

    def accepts(self, ctx: NodeContext) -> bool:
        """True once etcd listens on its client port, if this member votes alone.

        etcd binds its ports before it opens its data, and answers a client's TLS handshake
        once it is ready (etcd server/embed/serve.go: ``serve`` waits for ReadyNotify), so a
        client that dials it early waits; a lone voter is ready within seconds of opening its
        data. A member among other voters is ready only once a quorum is up, which may take
        long: for it this waits until it serves (``ready``).
        """
        from microkube.datastore.membership import load_cache, votes_alone

        if not votes_alone(load_cache(ctx.paths), ctx.node.node_ip):
            return self.ready(ctx)
        return tcp_accepts("127.0.0.1", ctx.paths.ports.datastore_client, timeout=0.2)

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
