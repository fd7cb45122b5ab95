"""kine, the datastore for ``sqlite``, ``postgres://`` and ``mysql://``: etcd's API over SQL.

It listens where the embedded etcd would (loopback, etcd's client port and
certificates), so the API server is pointed at it with etcd's own flags. The
endpoint, which may hold a password, reaches kine through its environment, never
its command line; so do the external database's TLS files.
"""

from __future__ import annotations

from typing import ClassVar

from microkube.datastore import kine, settings
from microkube.probes import tls_accepts, tls_context
from microkube.services.base import Daemon, NodeContext


class Kine(Daemon):
    name = "kine"
    binary = "kine"
    stop_timeout: ClassVar[float] = 15.0

    def prepare(self, ctx: NodeContext) -> None:
        kine.sqlite_file(ctx.paths).parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def environment(self, ctx: NodeContext) -> dict[str, str]:
        env = super().environment(ctx)
        store = settings.load(ctx.paths, ctx.node.datastore)
        env.update(kine.environment(ctx.paths, store))
        return env

    def ready(self, ctx: NodeContext) -> bool:
        # kine listens only once its database answered and its schema is in place.
        pki = ctx.paths.pki
        context = tls_context(pki.etcd_ca.cert, pki.etcd_apiserver_client.cert,
                              pki.etcd_apiserver_client.key)
        return tls_accepts("127.0.0.1", ctx.paths.ports.datastore_client, context)
