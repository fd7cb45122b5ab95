"""Child and parent processes: waiting on long-running children (builds, packing) while
showing they are alive, leaving with the parent, and saying in one line why a tool failed."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def failure_line(proc: subprocess.CompletedProcess[str], prefix: str = "") -> str:
    """Why a tool that exited non-zero failed, in one line: the last non-blank line of its
    stderr (its stdout if stderr is empty) without the tool's ``prefix`` (e.g. "Error: "),
    or "exit status N" when it printed nothing."""
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
    return lines[-1].removeprefix(prefix) if lines else f"exit status {proc.returncode}"


def wait_with_heartbeat(proc: subprocess.Popen[str], every: float,
                        beat: Callable[[float], None]) -> int:
    """Wait for ``proc``, calling ``beat(seconds_so_far)`` every ``every`` seconds.

    If the wait is interrupted (Ctrl-C, an error), the child is killed: it is
    ours, and a build or mksquashfs must not outlive the command that started it.
    """
    started = time.monotonic()
    try:
        while True:
            try:
                return proc.wait(timeout=every)
            except subprocess.TimeoutExpired:
                beat(time.monotonic() - started)
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def stop_with_parent() -> None:
    """Ask the kernel for SIGTERM when the process that started us dies.

    The node's other daemons are found and ended by their command lines when a
    killed supervisor leaves them behind; microkube's own daemon (the cluster
    agent, which runs the manifest deployer too) runs from the Python interpreter,
    which those rules do not match, so it leaves with its parent. (In the snap the parent
    is systemd, which does not die.)
    """
    import ctypes  # only the daemons that leave with their parent need it

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
