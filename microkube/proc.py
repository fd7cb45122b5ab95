"""Waiting on long-running child processes (builds, packing) while showing they are alive."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


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
