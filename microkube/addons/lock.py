"""One enable or disable at a time per node: a second one waits for the first."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from microkube.errors import MicrokubeError


@contextlib.contextmanager
def addon_lock(path: Path, say: Callable[[str], None], timeout: float = 600.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path``; the kernel drops it if we die."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another 'microkube enable/disable' to finish...")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise MicrokubeError(
                            f"another enable/disable still holds {path} after {timeout:.0f} s"
                        ) from None
                    time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
