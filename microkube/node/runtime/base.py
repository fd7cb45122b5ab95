"""The interface both node runtimes implement, and what they share."""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import Callable

from microkube.errors import MicrokubeError, NotRunningError
from microkube.node.guard import NOT_RUNNING_MESSAGE, require_set_up
from microkube.paths import Paths
from microkube.pki.expiry_summary import earliest_expiry_summary

Progress = Callable[[str], None]


class NodeRuntime(abc.ABC):
    """Runs, stops and reports the node's daemons.

    Daemon states are the supervisor's words: ``waiting``, ``starting``,
    ``ready``, ``backoff`` and ``stopped``.
    """

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    @abc.abstractmethod
    def daemon_states(self) -> dict[str, str] | None:
        """Each daemon's state by name, in start order; None if the node is not running."""

    def is_running(self) -> bool:
        """True if any of the node's daemons runs (or is being started)."""
        return self.daemon_states() is not None

    def require_running(self) -> None:
        """Raise NotSetUpError for a node never set up, NotRunningError (one line saying how
        to start) for one whose daemons do not run; return if they run."""
        require_set_up(self.paths)
        if not self.is_running():
            raise NotRunningError(NOT_RUNNING_MESSAGE)

    @abc.abstractmethod
    def start(self, progress: Progress) -> bool:
        """Prepare the node and start its daemons; False if it was already running.

        Returns once the daemons are being started, not when they serve (see
        ``node.status.wait_ready``). Raises MicrokubeError if they cannot be started.
        """

    @abc.abstractmethod
    def stop(self, progress: Progress, timeout: float = 60.0) -> bool:
        """Stop every daemon and container and wait until they are gone.

        ``timeout`` is in seconds. Returns False if the node was not running;
        raises MicrokubeError if it did not stop in time.
        """

    @abc.abstractmethod
    def restart_daemon(self, name: str, timeout: float = 60.0) -> None:
        """Restart one daemon (e.g. the kubelet after its config changed) and wait until it serves.

        A node that is not running is left alone: the change applies at the next
        start. Raises MicrokubeError if the daemon is unknown or is not ready
        within ``timeout`` seconds.
        """

    def certificate_summary(self) -> tuple[str, int | None]:
        """The certificate file that expires first and its whole days left; ("", None) if none."""
        return earliest_expiry_summary(self.paths)

    def restart(self, progress: Progress) -> None:
        """Stop the node if it runs, then start it (e.g. so every daemon loads new certificates)."""
        self.stop(progress)
        self.start(progress)

    def clean_leftovers(self) -> None:
        """Remove what a killed earlier run left under this node's roots.

        Daemons and containerd shims of that run are found by this node's paths
        in their command lines; pod processes are their descendants. Mounts below
        the common root go, and so do CNI scratch files: no pod runs now.
        """
        paths = self.paths
        from microkube.services import cleanup

        stale = cleanup.node_processes(paths.bin_dir, [str(paths.data), str(paths.common)])
        victims = {p.pid: p for p in stale}
        for p in stale:
            with contextlib.suppress(Exception):
                for child in p.children(recursive=True):
                    victims[child.pid] = child
        if victims:
            cleanup.kill_processes(list(victims.values()))
        cleanup.unmount_below(paths.common)
        with contextlib.suppress(FileNotFoundError):
            paths.supervisor_state.unlink()
        import shutil  # here: status, which never cleans, skips its import

        shutil.rmtree(paths.cni_state_dir, ignore_errors=True)


def wait_until(ready: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    """Poll ``ready`` every ``step`` seconds until it is true.

    Raises MicrokubeError naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() >= deadline:
            raise MicrokubeError(f"{what} within {timeout:.0f} s")
        time.sleep(step)
