"""Entry point of the supervisor process: ``python -m microkube.services.supervise``."""

from __future__ import annotations

import sys

from microkube.node.setup import load_context
from microkube.paths import Paths
from microkube.services.registry import control_plane_daemons
from microkube.services.supervisor import Supervisor


def main() -> int:
    ctx = load_context(Paths.from_env())
    return Supervisor(ctx, control_plane_daemons()).run()


if __name__ == "__main__":
    sys.exit(main())
