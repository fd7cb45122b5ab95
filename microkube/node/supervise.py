"""Entry point of the supervisor process: ``python -m microkube.node.supervise``.

The supervisor runtime (node/runtime/supervisor.py) launches it; it lives in
the node layer because it wires the node's setup into the supervisor.
"""

from __future__ import annotations

import sys

from microkube.node.setup import ensure_pki, load_context
from microkube.paths import Paths
from microkube.services.registry import control_plane_daemons
from microkube.services.supervisor import Supervisor


def main() -> int:
    """Run the node's daemons until SIGTERM; returns the process exit code."""
    ctx = load_context(Paths.from_env())
    return Supervisor(ctx, control_plane_daemons(),
                      renew_certificates=lambda: ensure_pki(ctx.paths, ctx.node)).run()


if __name__ == "__main__":
    sys.exit(main())
