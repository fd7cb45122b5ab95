"""status's copy of the addon listing: used while its files are unchanged, never stale."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from microkube.addons.listing import addon_statuses
from microkube.addons.state import AddonState
from microkube.paths import Paths
from tests.addonrepo import one_addon_repository


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")


def _age(path: Path, seconds: float = 60) -> None:
    """Set ``path``'s times ``seconds`` back: older than the racy window."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def _description(paths: Paths, name: str) -> str:
    return next(a.description for a in addon_statuses(paths, {}) if a.name == name)


def test_the_copy_answers_while_its_files_are_unchanged(paths: Paths) -> None:
    first = addon_statuses(paths, {})
    assert paths.addon_status_cache.exists()
    doc = json.loads(paths.addon_status_cache.read_text())
    for row in doc["addons"]:
        if row[0] == "dns":
            row[2] = "from the copy"
    paths.addon_status_cache.write_text(json.dumps(doc))
    assert _description(paths, "dns") == "from the copy"  # answered from the copy
    # Other substitutions: another listing (argument files are read with them).
    assert [a.description for a in addon_statuses(paths, {"x": "y"})] == \
        [a.description for a in first]


def test_a_changed_state_file_is_read_again_and_a_fresh_one_is_not_copied(paths: Paths) -> None:
    addon_statuses(paths, {})
    AddonState.load(paths.addons_state_file).mark_enabled("core/dns", "1.15.0", {}, [])
    kept = paths.addon_status_cache.read_text()
    dns = next(a for a in addon_statuses(paths, {}) if a.name == "dns")
    assert dns.enabled
    # Written just now, the state file may change again within its timestamp's
    # granularity: the listing read from it is not kept.
    assert paths.addon_status_cache.read_text() == kept
    _age(paths.addons_state_file)
    assert next(a for a in addon_statuses(paths, {}) if a.name == "dns").enabled
    inputs = dict(json.loads(paths.addon_status_cache.read_text())["inputs"])
    assert inputs[str(paths.addons_state_file)] is not None


def test_a_broken_copy_is_read_past(paths: Paths) -> None:
    expected = addon_statuses(paths, {})
    paths.addon_status_cache.write_text("{not json")
    assert addon_statuses(paths, {}) == expected


def test_an_added_repository_is_listed_past_the_copy(paths: Paths, tmp_path: Path) -> None:
    from microkube.addons import repos

    addon_statuses(paths, {})
    assert paths.addon_status_cache.exists()
    src = tmp_path / "src"
    hello = one_addon_repository(src, "hello", repo_description="community addons",
                                 description="Say hello")
    (hello / "addon.py").write_text("def enable(ctx): pass\ndef disable(ctx): pass\n")
    repos.add(paths, "community", str(src), None, False, lambda line: None)
    assert any(a.name == "hello" and a.repository == "community"
               for a in addon_statuses(paths, {}))
