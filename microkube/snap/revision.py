"""Re-point the node's files at the current snap revision after a refresh.

snapd copies $SNAP_DATA of the old revision to the new one before the
post-refresh hook. Rendered configs name absolute paths (containerd's runc
and CNI directories, the kubelet's certificates), which still point at the
old revision's $SNAP and $SNAP_DATA; they are rewritten to the new ones.
Certificates, keys and the datastore are kept byte for byte.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from microkube.fsutil import write_atomic
from microkube.paths import Paths

MAX_TEXT = 1 << 20  # configs are small; anything larger is not one
# Revision directories that are not a revision.
NOT_REVISIONS = ("current", "common")


def _revision_pattern(current: Path) -> re.Pattern[str]:
    """Matches <parent>/<some other revision> where ``current`` is <parent>/<revision>."""
    others = "|".join(map(re.escape, (*NOT_REVISIONS, current.name)))
    return re.compile(rf"{re.escape(str(current.parent))}/(?!(?:{others})(?:/|\b))[^/\s\"':,;]+")


def repoint_text(text: str, paths: Paths) -> str:
    for current in (paths.snap, paths.data):
        text = _revision_pattern(current).sub(str(current), text)
    return text


def repoint_tree(paths: Paths) -> list[Path]:
    """Rewrite old-revision paths in the node's text files; returns the files changed."""
    skip = {paths.datastore_dir, paths.certs_dir}
    changed = []
    for folder, dirs, files in os.walk(paths.data):
        dirs[:] = [d for d in dirs if Path(folder, d) not in skip]
        for name in files:
            path = Path(folder, name)
            if path.is_symlink() or path.stat().st_size > MAX_TEXT:
                continue
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            new = repoint_text(text, paths)
            if new != text:
                write_atomic(path, new, path.stat().st_mode & 0o7777)
                changed.append(path)
    return changed
