"""One enable or disable at a time per node: a second one waits for the first."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from microkube.fsutil import exclusive_lock


@contextlib.contextmanager
def addon_lock(path: Path, say: Callable[[str], None], timeout: float = 600.0) -> Iterator[None]:
    """Hold the node's addon lock ``path``; after ``timeout`` seconds of waiting,
    MicrokubeError says another enable/disable still holds it."""
    with exclusive_lock(path, say, "waiting for another 'microkube enable/disable' to finish...",
                        timeout, busy=f"another enable/disable still holds {path} after "
                                      f"{timeout:.0f} s"):
        yield
