"""The addon steps of a launch configuration, run once the new node is Ready."""

from __future__ import annotations

from collections.abc import Callable

from microkube.addons import engine
from microkube.addons.context import Reporter
from microkube.config import launch as launch_file
from microkube.fsutil import exclusive_lock
from microkube.paths import Paths


def apply_pending_addons(paths: Paths, write: Callable[[str], None]) -> list[str]:
    """Run the launch file's addon steps left (the node must be Ready); the addons done.

    Each step is dropped from the record once it succeeded, so a failure keeps the
    rest for the next ``microkube start`` (or, in the snap, the deployer's next pass).
    Steps run under a lock, read again once it is held: a second runner finds none left.
    Raises what the addon engine raises.
    """
    done = []
    with exclusive_lock(launch_file.pending_addons_lock(paths), write,
                        "waiting for the launch configuration's addons to be enabled...\n"):
        steps = launch_file.pending_addons(paths)
        while steps:
            verb, tokens = steps[0]
            (engine.enable if verb == "enable" else engine.disable)(paths, tokens,
                                                                    Reporter(write))
            done.append(tokens[0])
            steps = steps[1:]
            launch_file.save_pending_addons(paths, steps)
    return done


def apply_pending_addons_if_ready(paths: Paths, write: Callable[[str], None]) -> list[str] | None:
    """:func:`apply_pending_addons` if this node's Node is Ready; None (nothing run) if it
    is not, or its API server does not answer. Raises what the addon engine raises."""
    from microkube.config import node
    from microkube.errors import MicrokubeError
    from microkube.kube.api import KubeApi

    try:
        ready = KubeApi.for_admin(paths).node_ready(node.load(paths.state_file).node_name)
    except (MicrokubeError, OSError):
        ready = False
    return apply_pending_addons(paths, write) if ready else None
