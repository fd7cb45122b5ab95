"""The node runtime outside a snap: microkube's own supervisor process runs the daemons.

``start`` launches ``python -m microkube.node.supervise`` in a session of its
own; the supervisor publishes each daemon's state and pid in a file that the
CLI reads without talking to it (services/state.py).
"""

from __future__ import annotations

import contextlib
import sys
import time

from microkube.errors import MicrokubeError
from microkube.node.runtime.base import NodeRuntime, Progress, wait_until
from microkube.paths import absolute_environment
from microkube.services.state import SupervisorState

SUPERVISOR_MODULE = "microkube.node.supervise"
# Seconds the supervisor has to publish its state after it was launched.
SUPERVISOR_START_TIMEOUT = 10.0


class SupervisorRuntime(NodeRuntime):
    """Daemons run as children of microkube's supervisor (services/supervisor.py)."""

    def running_supervisor(self) -> SupervisorState | None:
        """The live supervisor's published state, or None if no supervisor runs."""
        state = SupervisorState.load(self.paths.supervisor_state)
        return state if state is not None and state.alive(self.paths.supervisor_lock) else None

    def daemon_states(self) -> dict[str, str] | None:
        sup = self.running_supervisor()
        return None if sup is None else {n: d.state for n, d in sup.daemons.items()}

    def certificate_summary(self) -> tuple[str, int | None]:
        # The supervisor checks every few hours; reading its answer keeps status fast.
        sup = self.running_supervisor()
        if sup is not None and sup.cert_days_left is not None:
            return sup.cert_earliest, sup.cert_days_left
        return super().certificate_summary()

    def start(self, progress: Progress) -> bool:
        if self.is_running():
            return False
        self.clean_leftovers()
        from microkube.node import setup

        setup.prepare(self.paths, progress=progress)
        log = self.paths.log_file("supervisor")
        with open(log, "ab") as out:
            import subprocess  # here: status, which never starts one, skips its import

            proc = subprocess.Popen(
                [sys.executable, "-m", SUPERVISOR_MODULE],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, env=absolute_environment(), cwd="/",
            )
        deadline = time.monotonic() + SUPERVISOR_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.running_supervisor():
                progress("microkube started; the node becomes Ready in a few seconds")
                return True
            if proc.poll() is not None:
                raise MicrokubeError(f"the supervisor exited at once; see {log}")
            time.sleep(0.05)
        raise MicrokubeError(f"the supervisor did not come up within "
                             f"{SUPERVISOR_START_TIMEOUT:.0f} s; see {log}")

    def stop(self, progress: Progress, timeout: float = 60.0) -> bool:
        state = self.running_supervisor()
        if state is None:
            self.clean_leftovers()
            return False
        import psutil

        proc = psutil.Process(state.pid)
        proc.terminate()
        progress("stopping microkube")
        try:
            proc.wait(timeout=timeout)
        except psutil.TimeoutExpired:
            raise MicrokubeError(f"microkube did not stop within {timeout:.0f} s") from None
        return True

    def restart_daemon(self, name: str, timeout: float = 60.0) -> None:
        # The supervisor restarts any daemon that exits, so ending it is enough.
        import psutil

        from microkube.services.registry import daemon_running

        try:
            name = daemon_running(name)
        except KeyError:
            raise MicrokubeError(f"no daemon named {name}") from None
        state = self.running_supervisor()
        if state is None:
            return
        daemon = state.daemons.get(name)
        if daemon is None or daemon.pid is None:
            raise MicrokubeError(f"no running daemon named {name}")
        old = daemon.pid
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(old).terminate()

        def replaced_and_ready() -> bool:
            now = self.running_supervisor()
            d = now.daemons.get(name) if now else None
            return d is not None and d.pid not in (None, old) and d.state == "ready"

        wait_until(replaced_and_ready, timeout, f"{name} did not come back")
