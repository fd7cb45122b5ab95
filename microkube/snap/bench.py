"""The snap's size for ``make bench``: the packed file and what takes the room in it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from microkube.paths import CHECKOUT

BUILD = CHECKOUT / "build"
TARGET_MB = 250


def newest_snap(build: Path = BUILD) -> Path | None:
    found = sorted(build.glob("microkube_*_amd64.snap"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def unpacked_sizes(snap: Path) -> dict[str, float]:
    """MB per top-level folder of the snap (uncompressed), from `unsquashfs -lls`."""
    out = subprocess.run(["unsquashfs", "-lls", str(snap)], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    sizes: dict[str, float] = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 6 or not cols[0].startswith("-") or " squashfs-root/" not in line:
            continue
        rel = line.split(" squashfs-root/", 1)[1]
        top = rel.split("/", 1)[0] if "/" in rel else "."
        sizes[top] = sizes.get(top, 0.0) + int(cols[2]) / 1e6
    return {k: round(v, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])}


def snap_bench(build: Path = BUILD) -> dict[str, Any]:
    snap = newest_snap(build)
    if snap is None:
        return {"error": "no snap in build/; run 'make snap'"}
    size = snap.stat().st_size / 1e6
    result: dict[str, Any] = {"file": snap.name, "size_mb": round(size, 1), "target_mb": TARGET_MB}
    try:
        result["unpacked_mb"] = unpacked_sizes(snap)
    except (OSError, subprocess.SubprocessError) as e:
        result["unpacked_mb"] = f"unavailable: {e}"
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(snap_bench(), indent=1))
