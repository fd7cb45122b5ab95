"""The component cache: built binaries keyed by everything that shaped them.

A component's binaries live in ``<cache>/components/<name>-<key>/bin/``
(Paths.components_cache).
The key is a hash of the component's manifest entry, our wrapper sources,
the toolchain and the build recipe version, so changing one component's pin
rebuilds that component only. A directory counts only once its marker file
exists; the marker is written last, and the directory is renamed into place
after that, so an interrupted build never looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microkube.components.manifest import Component
from microkube.fsutil import write_atomic

# Bump when build.py changes how binaries are made, so every cached build is redone.
RECIPE_VERSION = 1

MARKER = ".complete"
META = "meta.json"
KEY_LENGTH = 12


def cache_key(
    component: Component,
    toolchain: Mapping[str, str],
    wrapper_files: Mapping[str, bytes],
) -> str:
    """A short hash of every input that decides what the binaries contain."""
    doc: dict[str, Any] = {
        "recipe": RECIPE_VERSION,
        "component": component.build_recipe(),
        "toolchain": dict(sorted(toolchain.items())),
        "wrapper": {
            name: hashlib.sha256(data).hexdigest() for name, data in sorted(wrapper_files.items())
        },
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:KEY_LENGTH]


@dataclass(frozen=True)
class CacheEntry:
    """A finished build of one component."""

    path: Path

    @property
    def bin_dir(self) -> Path:
        return self.path / "bin"

    @property
    def meta(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / META).read_text())
        return data


class ComponentCache:
    """Finished component builds under ``directory`` (Paths.components_cache)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path(self, name: str, key: str) -> Path:
        return self.dir / f"{name}-{key}"

    def lookup(self, name: str, key: str) -> CacheEntry | None:
        path = self.path(name, key)
        return CacheEntry(path) if (path / MARKER).is_file() else None

    def staging(self, name: str, key: str) -> Path:
        """A fresh directory to build into; commit() moves it into place."""
        tmp = self.dir / f".{name}-{key}.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "bin").mkdir(parents=True)
        return tmp

    def commit(self, staging: Path, name: str, key: str, meta: Mapping[str, Any]) -> CacheEntry:
        """Write the metadata, then the marker (last), then rename into place."""
        write_atomic(staging / META, json.dumps(dict(meta), indent=2, sort_keys=True) + "\n")
        write_atomic(staging / MARKER, "")
        final = self.path(name, key)
        if final.exists():  # a stale, unmarked leftover of an interrupted build
            shutil.rmtree(final)
        os.replace(staging, final)
        return CacheEntry(final)

    def prune(self, name: str, keep: str, spare: int = 2) -> None:
        """Drop old builds of ``name``, keeping ``keep`` and the ``spare`` newest others,
        so switching a pin back and forth stays cheap without the cache growing forever."""
        others = sorted(
            (p for p in self.dir.glob(f"{name}-*")
             if p.name != f"{name}-{keep}" and _is_entry_of(p.name, name)),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in others[spare:]:
            with contextlib.suppress(OSError):
                shutil.rmtree(old)


def _is_entry_of(dirname: str, name: str) -> bool:
    # "cni-plugins-<key>" must not be taken for an entry of a component named "cni".
    rest = dirname[len(name) + 1:]
    return len(rest) == KEY_LENGTH and all(c in "0123456789abcdef" for c in rest)
