"""The manifest deployer (microkube.manifests): a thread of the cluster agent, not a daemon.

It was a daemon of its own, for its own restarts and log file. Those it keeps inside
the agent's process (microkube.manifests.watch.Background: restarted with a backoff
when it fails, ``manifests.log`` of its own), and it saves a Python interpreter
(~13 MB PSS at idle; the agent already imports all but ~0.5 MB of what it needs).
It cannot block the agent's HTTPS: its kubectl and helm calls are subprocesses, run
from a thread. Both run on control planes only.

What stays here: the node's part of its lifecycle, for the cluster agent's Daemon.
"""

from __future__ import annotations

import contextlib

from microkube.paths import Paths


def prepare(paths: Paths) -> None:
    """Before the agent (and so the deployer) starts: the deploy folder exists, and an
    earlier run's report is gone, so the deployer is not taken as ready before its first pass."""
    with contextlib.suppress(FileNotFoundError):
        paths.manifests_report_file.unlink()
    paths.manifests_dir.mkdir(parents=True, exist_ok=True)


def ready(paths: Paths) -> bool:
    """True once the deployer has finished its first pass over the folder (its report)."""
    return paths.manifests_report_file.exists()
