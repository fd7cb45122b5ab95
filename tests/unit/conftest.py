"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from microkube.paths import Paths


@pytest.fixture
def node_env_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """The Paths of a node rooted in ``tmp_path``/root (name "unit", address 192.0.2.10),
    with that node's MICROKUBE_* environment set and any SNAP variables removed, as code
    that reads the environment itself (set-up, the CLI) sees it."""
    for var in ("SNAP", "SNAP_DATA", "SNAP_COMMON"):
        monkeypatch.delenv(var, raising=False)
    env = {"MICROKUBE_ROOT": str(tmp_path / "root"), "MICROKUBE_NODE_NAME": "unit",
           "MICROKUBE_NODE_IP": "192.0.2.10"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Paths.from_env(env)
