"""Addon repositories for tests: a folder holding one addon, written where a test wants it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def one_addon_repository(repo: Path, name: str, *, repo_description: str, description: str,
                         **fields: Any) -> Path:
    """Write ``repo``/addons.yaml, a format-1 index (described as ``repo_description``) of one
    addon: ``name``, ``description``, version 0.1, enabled when configmap/``name`` exists in
    namespace default, built for amd64 and arm64, plus any other index ``fields`` (e.g.
    ``arguments``). Makes ``repo`` and the addon's folder ``repo``/``name``, and returns that
    folder, still empty: the caller writes the addon's files (addon.py at least) into it."""
    folder = repo / name
    folder.mkdir(parents=True)
    (repo / "addons.yaml").write_text(yaml.safe_dump({
        "format": 1, "description": repo_description,
        "addons": [{"name": name, "description": description, "version": "0.1",
                    "enabled_when": {"resource": f"configmap/{name}", "namespace": "default"},
                    "architectures": ["amd64", "arm64"], **fields}]}))
    return folder
