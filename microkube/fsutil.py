"""Atomic file writes (a reader sees the old file or the new one, never half) and
the exclusive file lock that serialises builds and addon changes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from microkube.errors import MicrokubeError


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file (synced) and a rename (its
    directory synced), so after a crash or power loss the file is the old one or the new one.

    The temporary file is created with ``mode`` before any byte is written,
    so a private key is never readable by others, not even for a moment.
    """
    import tempfile  # here: shutil, random and the compressors behind it cost readers nothing

    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable: without it, a power loss right after
    :func:`write_atomic` may bring back the old file (or none) though the data was synced."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_private(path: Path, data: str | bytes) -> None:
    """Write a key, token or credential: 0600, atomically."""
    write_atomic(path, data, mode=0o600)


def is_locked(path: Path) -> bool:
    """True when some process holds an exclusive flock on ``path`` (False for a file that
    is missing or unreadable). Never waits."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops the shared lock taken just now
    return False


def hold_lock_for_life(path: Path, tries: int = 20) -> bool:
    """Take an exclusive flock on ``path`` (created 0644) for the rest of this process's life;
    forked children close their copy, so the lock ends when this process does. Tries
    ``tries`` times, 50 ms apart (a reader's brief shared lock may be in the way); False
    when another process keeps it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    for _ in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            time.sleep(0.05)
            continue
        os.register_at_fork(after_in_child=lambda: os.close(fd))
        return True
    os.close(fd)
    return False


@contextlib.contextmanager
def exclusive_lock(path: Path, say: Callable[[str], None], waiting: str,
                   timeout: float | None = None, busy: str | None = None) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if needed); the kernel drops it if we die.

    When another process holds it, ``say(waiting)`` once, then wait: forever, or up
    to ``timeout`` seconds, after which MicrokubeError(``busy``, or a line naming the
    lock file) is raised.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(waiting)
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise MicrokubeError(busy or f"another process still holds {path} "
                                             f"after {timeout:.0f} s") from None
                    time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
