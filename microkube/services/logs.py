"""Daemon log files, appended to by the daemons and rotated by copy-and-truncate.

The daemon writes with O_APPEND, so truncating the file under it is safe
and no daemon needs to reopen anything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import IO

MAX_BYTES = 10 * 1024 * 1024
KEEP = 3


def open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab", buffering=0)


def rotate_if_large(path: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> bool:
    try:
        if path.stat().st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    for i in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with open(path, "r+b") as f:
        f.truncate(0)
    return True
