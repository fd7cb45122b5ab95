"""What the snap tests need: the primed tree and the packed .snap from `make snap`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from microkube.paths import CHECKOUT

PRIME = CHECKOUT / "build" / "craft" / "prime"
SNAP_DIR = CHECKOUT / "build"


def packed_snap() -> Path | None:
    found = sorted(SNAP_DIR.glob("microkube_*_amd64.snap"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


@pytest.fixture(scope="session")
def snap_tool() -> str:
    tool = shutil.which("snap")
    if tool is None:
        pytest.skip("'snap' is not installed (apt-get install snapd squashfs-tools)")
    return tool


@pytest.fixture(scope="session")
def prime() -> Path:
    if not (PRIME / "meta" / "snap.yaml").exists():
        pytest.skip("no assembled snap tree in build/craft/prime; run 'make snap'")
    return PRIME


@pytest.fixture(scope="session")
def snap_file() -> Path:
    found = packed_snap()
    if found is None:
        pytest.skip("no packed snap in build/; run 'make snap'")
    if shutil.which("unsquashfs") is None:
        pytest.skip("unsquashfs is not installed (apt-get install squashfs-tools)")
    return found
