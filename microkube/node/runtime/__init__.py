"""The node runtime: what runs the node's daemons, chosen once.

Outside a snap microkube's own supervisor runs them; inside one snapd does,
driven through ``snapctl``. Every caller (start, stop, status, the addon
engine, images, refresh-certs, reset, inspect) asks :func:`runtime_for` and
talks to the :class:`NodeRuntime` it returns, so no other module asks
which of the two it is. This is kind's Provider shape (kind
``pkg/cluster/internal/providers/provider.go``): one interface, one choice.
"""

from __future__ import annotations

from microkube.node.runtime.base import NodeRuntime, Progress
from microkube.paths import Paths

__all__ = ["NodeRuntime", "Progress", "runtime_for"]


def runtime_for(paths: Paths) -> NodeRuntime:
    """The runtime that runs this node's daemons: snapd inside a snap, else the supervisor.

    Takes the node's :class:`Paths`; returns a runtime bound to them. This is
    the one place the backend is chosen.
    """
    if paths.in_snap:
        from microkube.node.runtime.snapd import SnapdRuntime

        return SnapdRuntime(paths)
    from microkube.node.runtime.supervisor import SupervisorRuntime

    return SupervisorRuntime(paths)
