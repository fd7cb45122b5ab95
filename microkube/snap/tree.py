"""The snap's read-only tree: what must be in it, and what is left out of it.

The tree is laid out as ``make components`` lays out build/snap (see
microkube/paths.py), plus the Python runtime, the launchers, the core addon
repository and meta/.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from microkube.fsutil import write_atomic
from microkube.paths import Paths

# Components that run only inside an addon's image (microkube/images/addon_recipes.py
# packs each binary into its image). The image carries them; bin/ does not need them.
IMAGE_ONLY = ("coredns", "local-path-provisioner", "metrics-server", "registry")

HOOKS = ("install", "configure", "remove", "post-refresh")
LAUNCHERS = ("bin/microkube", "bin/microkube-daemon", "bin/microkube-hook", "bin/python3")
# Host tools the snap carries (the ipset part): kubelite's netpol part runs ipset.
TOOLS = ("bin/ipset", "usr/sbin/ipset")


def prune_image_inputs(tree: Path) -> list[str]:
    """Drop the image-only binaries from bin/ and from the install record."""
    removed = []
    for name in IMAGE_ONLY:
        with contextlib.suppress(FileNotFoundError):
            (tree / "bin" / name).unlink()
            removed.append(f"bin/{name}")
    record = tree / "versions.json"
    if record.exists():
        doc: dict[str, Any] = json.loads(record.read_text())
        comps = doc.get("components", {})
        for name in IMAGE_ONLY:
            comps.pop(name, None)
        write_atomic(record, json.dumps(doc, indent=2) + "\n", 0o644)
    return removed


def required_paths() -> list[str]:
    """Every file the apps, hooks and daemons expect in the tree, relative to $SNAP."""
    from microkube.components.manifest import load
    from microkube.images.addon_recipes import addon_recipes
    from microkube.images.recipes import all_recipes
    from microkube.services.registry import all_daemons

    manifest = load()
    snap = Paths(Path(), Path(), Path())  # so its folders come out relative to $SNAP
    need = [*LAUNCHERS, *TOOLS, "versions.json", "addons/addons.yaml", "meta/snap.yaml"]
    need += [f"meta/hooks/{h}" for h in HOOKS]
    for comp in manifest.components:
        if comp.name in IMAGE_ONLY:
            continue
        base = snap.component_dir(comp.dest)
        need += [f"{base}/{b.name}" for b in comp.binaries]
        need += [f"{base}/{link}" for link, _ in comp.links]
    need += [f"bin/{d.binary}" for d in all_daemons()]
    need += [f"images/{r.name}.tar" for r in all_recipes()]
    need += [f"images/addons/{r.name}.tar" for r in addon_recipes(Path("/nonexistent"))]
    return sorted(dict.fromkeys(need))


def missing_paths(tree: Path) -> list[str]:
    return [p for p in required_paths() if not (tree / p).exists()]
