"""Child and parent processes: waiting on long-running children (builds, packing) while
showing they are alive, and leaving with the parent."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


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
    killed supervisor leaves them behind; microkube's own daemons (the cluster
    agent, the manifest deployer) run from the Python interpreter, which those
    rules do not match, so they leave with their parent. (In the snap the parent
    is systemd, which does not die.)
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
