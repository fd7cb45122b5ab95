"""Entry point of the supervisor process: ``python -m microkube.node.supervise``.

The supervisor runtime (node/runtime/supervisor.py) launches it; it lives in
the node layer because it wires the node's setup into the supervisor.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

from microkube.node.setup import ensure_pki, load_context
from microkube.paths import Paths
from microkube.services.base import NodeContext
from microkube.services.registry import daemons_for
from microkube.services.supervisor import Supervisor, run_forked
from microkube.yamlerrors import has_current_copy


def _renewer(ctx: NodeContext) -> Callable[[], None]:
    """How this node renews its leaf certificates that are due: a control plane from its
    own CAs, a worker (which holds no CA key) through a control plane's cluster agent
    (cluster/renew.py)."""
    if ctx.node.is_worker:
        def worker() -> None:
            from microkube.cluster.renew import renew_worker

            done = renew_worker(ctx.paths, ctx.node)
            print(f"renewed {', '.join(done.renewed) or 'nothing'} through the control plane "
                  f"at {done.agent or '-'}", flush=True)
        return worker

    def control_plane() -> None:
        ensure_pki(ctx.paths, ctx.node)
        _refresh_admin_pem(ctx.paths)  # a renewed admin.config: see _read_ahead
    return control_plane


def _read_ahead(paths: Paths) -> None:
    """Parse the YAML files the supervisor reads into the copies it reads instead; run in a
    forked child (run_forked), so the supervisor itself never imports PyYAML, which it would
    keep (~1 MB PSS) for the node's lifetime.

    The copies are node.yaml's JSON copy (yamlerrors.read), and on a control plane the
    admin's client PEM that the API server's readiness probe presents (kube/api.py
    client_pem); both are stale at the first start after set-up. A file that cannot be read
    fails again where the supervisor reads it, which reports it as before.
    """
    if not load_context(paths).node.is_worker:
        _refresh_admin_pem(paths)


def _current_context(paths: Paths) -> NodeContext | None:
    """The node's context if every copy _read_ahead makes is already up to date (true at
    every start but the first after set-up, a settings change or a certificate renewal), so
    its fork (~15 ms before any daemon starts) can be skipped; else None."""
    from microkube.kube.api import pem_is_current

    if not has_current_copy(paths.state_file, paths.yaml_cache_dir):
        return None
    ctx = load_context(paths)
    return ctx if ctx.node.is_worker or pem_is_current(paths.kubeconfig("admin")) else None


def _refresh_admin_pem(paths: Paths) -> None:
    """Bring the admin's client PEM up to date with admin.config, if it can be read."""
    # Here: kube.api's PEM refresh loads PyYAML, which only this forked child may keep.
    from microkube.kube.api import client_pem

    with contextlib.suppress(Exception):  # best effort: the readiness probe reads it again
        client_pem(paths.kubeconfig("admin"))


def supervisor(paths: Paths) -> Supervisor:
    """The supervisor of the node at ``paths``, ready to run (a child has parsed its YAML
    first: _read_ahead)."""
    ctx = _current_context(paths)
    if ctx is None:
        run_forked(lambda: _read_ahead(paths))
        ctx = load_context(paths)
    return Supervisor(ctx, daemons_for(ctx.node), renew_certificates=_renewer(ctx))


def main() -> int:
    """Run the node's daemons until SIGTERM; returns the process exit code."""
    return supervisor(Paths.from_env()).run()


if __name__ == "__main__":
    sys.exit(main())
