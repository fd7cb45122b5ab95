"""Entry point of the supervisor process: ``python -m microkube.node.supervise``.

The supervisor runtime (node/runtime/supervisor.py) launches it; it lives in
the node layer because it wires the node's setup into the supervisor.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from microkube.node.setup import ensure_pki, load_context
from microkube.paths import Paths
from microkube.services.base import NodeContext
from microkube.services.registry import daemons_for
from microkube.services.supervisor import Supervisor


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
    return control_plane


def main() -> int:
    """Run the node's daemons until SIGTERM; returns the process exit code."""
    ctx = load_context(Paths.from_env())
    return Supervisor(ctx, daemons_for(ctx.node), renew_certificates=_renewer(ctx)).run()


if __name__ == "__main__":
    sys.exit(main())
