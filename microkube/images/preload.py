"""Import the image archives shipped with microkube, once per archive content.

A stamp in containerd's root records the digests already imported, so a
restart does not re-import what containerd already holds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from microkube.fsutil import write_atomic
from microkube.images.importer import import_archives
from microkube.paths import Paths


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def preload_shipped_images(paths: Paths) -> list[Path]:
    """Import every shipped archive not imported before; returns what was imported."""
    if not paths.images_dir.is_dir():
        return []
    stamp = paths.containerd_root / "microkube-imported.json"
    try:
        done: dict[str, str] = json.loads(stamp.read_text())
    except (OSError, ValueError):
        done = {}
    todo = []
    for archive in sorted(paths.images_dir.glob("*.tar")):
        digest = _digest(archive)
        if done.get(archive.name) != digest:
            todo.append((archive, digest))
    if todo:
        import_archives(paths.binary("ctr"), paths.containerd_socket, [a for a, _ in todo])
        done.update({a.name: d for a, d in todo})
        write_atomic(stamp, json.dumps(done, indent=1))
    return [a for a, _ in todo]
