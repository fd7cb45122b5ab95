"""Starting and stopping the node: through our supervisor, or through snapd in a snap."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

from microkube.errors import MicrokubeError
from microkube.paths import Paths
from microkube.services import cleanup
from microkube.services.base import NodeContext
from microkube.services.state import SupervisorState

Progress = Callable[[str], None]


def running_supervisor(paths: Paths) -> SupervisorState | None:
    state = SupervisorState.load(paths.supervisor_state)
    return state if state is not None and state.alive() else None


def _daemon_names() -> list[str]:
    from microkube.services.registry import control_plane_daemons

    return [d.name for d in control_plane_daemons()]


def is_running(paths: Paths) -> bool:
    if paths.in_snap:
        from microkube.services import snapctl

        return any(snapctl.active(_daemon_names()).values())
    return running_supervisor(paths) is not None


def daemon_states(paths: Paths) -> dict[str, str] | None:
    """Each daemon's state (waiting, starting, ready, backoff, stopped); None if not running."""
    if not paths.in_snap:
        sup = running_supervisor(paths)
        return None if sup is None else {n: d.state for n, d in sup.daemons.items()}
    from microkube.services import snapctl
    from microkube.services.registry import control_plane_daemons

    active = snapctl.active(_daemon_names())
    if not any(active.values()):
        return None
    ctx = NodeContext.load(paths)
    return {d.name: ("stopped" if not active[d.name] else "ready" if d.ready(ctx) else "starting")
            for d in control_plane_daemons()}


def certificate_summary(paths: Paths) -> tuple[str, int | None]:
    """The certificate that expires first and its days left, as last checked."""
    sup = None if paths.in_snap else running_supervisor(paths)
    if sup is not None and sup.cert_days_left is not None:
        return sup.cert_earliest, sup.cert_days_left
    from microkube.node.certs import expiries  # no supervisor to ask: read them now

    found = expiries(paths)
    return (found[0].path.name, found[0].days_left) if found else ("", None)


def start(paths: Paths, progress: Progress) -> bool:
    """Start the node; False if it was already running."""
    if is_running(paths):
        return False
    if paths.in_snap:
        from microkube.node import setup
        from microkube.services import snapctl

        setup.prepare(paths)
        snapctl.start(_daemon_names())
        progress("microkube started; the node becomes Ready in a few seconds")
        return True
    clean_after_crash(paths)
    from microkube.node import setup

    setup.prepare(paths)
    log = paths.log_file("supervisor")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "microkube.services.supervise"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=dict(os.environ), cwd="/",
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if running_supervisor(paths):
            progress("microkube started; the node becomes Ready in a few seconds")
            return True
        if proc.poll() is not None:
            raise MicrokubeError(f"the supervisor exited at once; see {log}")
        time.sleep(0.05)
    raise MicrokubeError(f"the supervisor did not come up within 10 s; see {log}")


def stop(paths: Paths, progress: Progress, timeout: float = 60.0) -> bool:
    """Stop the node and wait until every process is gone; False if it was not running."""
    if paths.in_snap:
        from microkube.services import snapctl

        if not is_running(paths):
            return False
        snapctl.stop(_daemon_names())
        return True
    state = running_supervisor(paths)
    if state is None:
        clean_after_crash(paths)
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


def clean_after_crash(paths: Paths) -> None:
    """Remove what a killed earlier run left under this node's root.

    Daemons and containerd shims of that run are found by the paths of this
    node in their command lines; pod processes are their descendants.
    """
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
    # No pod runs now, so every IP reservation and CNI scratch file is stale.
    shutil.rmtree(paths.cni_state_dir, ignore_errors=True)


def restart_daemon(paths: Paths, name: str, timeout: float = 60.0) -> None:
    """Restart one daemon (e.g. the kubelet after its config changed) and wait until it serves.

    The supervisor restarts any daemon that exits, so ending it is enough.
    """
    import psutil

    if paths.in_snap:
        from microkube.services import snapctl

        snapctl.restart(name)
        return
    state = running_supervisor(paths)
    if state is None:
        return  # not running: the change applies at the next start
    daemon = state.daemons.get(name)
    if daemon is None or daemon.pid is None:
        raise MicrokubeError(f"no running daemon named {name}")
    old = daemon.pid
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(old).terminate()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = running_supervisor(paths)
        d = state.daemons.get(name) if state else None
        if d is not None and d.pid not in (None, old) and d.state == "ready":
            return
        time.sleep(0.2)
    raise MicrokubeError(f"{name} did not come back within {timeout:.0f} s")
