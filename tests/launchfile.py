"""Launch files for tests: written where a test wants them."""

from __future__ import annotations

from pathlib import Path


def write_launch(folder: Path, text: str) -> Path:
    """Write ``text`` as ``launch.yaml`` in ``folder``; returns its path."""
    path = folder / "launch.yaml"
    path.write_text(text)
    return path
