"""The node runtime inside a snap: snapd runs each daemon as an app, driven by ``snapctl``.

Each daemon is the app ``microkube.daemon-<name>`` (snapcraft.yaml); its
command, ``microkube-daemon NAME`` (node/snap_daemon.py), waits for the
daemons it needs and execs the daemon, so snapd supervises the daemon itself.
"""

from __future__ import annotations

from microkube.errors import MicrokubeError, UsageError
from microkube.node.runtime.base import NodeRuntime, Progress, wait_until
from microkube.services import snapctl
from microkube.services.base import Daemon, NodeContext
from microkube.services.registry import (
    all_daemons,
    control_plane_daemons,
    daemon_running,
    daemons_for,
)


class SnapdRuntime(NodeRuntime):
    """Daemons run as the snap's daemon apps under snapd."""

    def _daemons(self) -> list[Daemon]:
        """The daemons of this node's role; a control plane's when its settings cannot be read
        (the snap installs a control plane, and each command reports a broken file itself)."""
        try:
            return daemons_for(NodeContext.load(self.paths).node)
        except UsageError:
            return control_plane_daemons()

    def _names(self) -> list[str]:
        return [d.name for d in self._daemons()]

    def daemon_states(self) -> dict[str, str] | None:
        active = snapctl.active(self._names())
        if not any(active.values()):
            return None
        ctx = NodeContext.load(self.paths)
        return {d.name: ("stopped" if not active[d.name] else "ready" if d.ready(ctx) else "starting")
                for d in self._daemons()}

    def start(self, progress: Progress) -> bool:
        # An app a user stopped by hand (snap stop microkube.daemon-kubelet) is started too.
        active = snapctl.active(self._names())
        if all(active.values()):
            return False
        from microkube.node import setup

        setup.prepare(self.paths, progress=progress)
        self._disable_unused()
        snapctl.start(self._names())
        progress("microkube started; the node becomes Ready in a few seconds")
        return True

    def stop(self, progress: Progress, timeout: float = 60.0) -> bool:
        # snapctl waits for systemd, which waits for each app's stop-timeout (snapcraft.yaml);
        # those, not ``timeout``, bound the wait here.
        if not self.is_running():
            return False
        progress("stopping microkube")
        # Every app, not only this node's: one that idles (see _disable_unused) stops too.
        snapctl.stop([d.name for d in all_daemons()])
        return True

    def _disable_unused(self) -> None:
        """Stop and disable the daemon apps this node does not run (snapd starts every app at
        install: etcd on a sqlite node, kine on an etcd node, a control plane's on a worker),
        so ``snap services`` shows only what runs."""
        own = set(self._names())
        unused = [d.name for d in all_daemons() if d.name not in own]
        if any(snapctl.active(unused).values()):
            snapctl.stop(unused)

    def restart_daemon(self, name: str, timeout: float = 60.0) -> None:
        try:
            running = daemon_running(name)
        except KeyError:
            raise MicrokubeError(f"no daemon named {name}") from None
        daemon = next((d for d in self._daemons() if d.name == running), None)
        if daemon is None:
            raise MicrokubeError(f"{name} does not run on this node")
        name = daemon.name
        if not self.is_running():
            return
        snapctl.restart(name)
        ctx = NodeContext.load(self.paths)
        wait_until(lambda: daemon.ready(ctx), timeout, f"{name} did not come back")
