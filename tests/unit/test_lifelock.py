"""The supervisor's life lock: held while the process lives, never by what it forks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from microkube.fsutil import is_locked


def _holder(lock: Path, fork_child: bool) -> subprocess.Popen[str]:
    """A process that takes the lock for life, optionally forks a child that outlives it,
    says 'held', then waits for a line on stdin and exits."""
    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from microkube.fsutil import hold_lock_for_life\n"
        f"assert hold_lock_for_life(Path({str(lock)!r}))\n"
        f"if {fork_child} and os.fork() == 0:\n"
        "    os.dup2(os.open(os.devnull, os.O_RDWR), 1); time.sleep(5); os._exit(0)\n"
        "print('held', flush=True); sys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_lives_and_ends_with_its_process(tmp_path: Path) -> None:
    lock = tmp_path / "supervisor.lock"
    assert not is_locked(lock)  # missing
    proc = _holder(lock, fork_child=False)
    assert is_locked(lock)
    assert is_locked(lock)  # asking took no lock of its own that lingers
    proc.communicate("\n", timeout=10)
    assert not is_locked(lock)


def test_a_forked_child_does_not_keep_it(tmp_path: Path) -> None:
    lock = tmp_path / "supervisor.lock"
    proc = _holder(lock, fork_child=True)
    assert is_locked(lock)
    proc.communicate("\n", timeout=10)
    deadline = time.monotonic() + 5
    while is_locked(lock) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_locked(lock)  # while the forked child still sleeps (it ends on its own)
