"""Finding addons across repositories, requirements first, and the state file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from microkube.addons.catalog import Catalog
from microkube.addons.repository import load
from microkube.addons.state import AddonState, ObjectRef
from microkube.errors import UsageError
from microkube.paths import CHECKOUT

CORE = load(CHECKOUT / "addons", "core")


def test_requirements_come_first_and_once() -> None:
    cat = Catalog((CORE,))
    order = [a.name for a in cat.with_requirements([cat.find("registry"), cat.find("storage"),
                                                    cat.find("dns")])]
    assert order == ["hostpath-storage", "registry", "dns"]
    assert [a.name for a in cat.dependents(cat.find("storage"))] == ["registry"]


def test_a_name_in_two_repositories_must_be_qualified(tmp_path: Path) -> None:
    shutil.copytree(CHECKOUT / "addons", tmp_path / "other")
    cat = Catalog((CORE, load(tmp_path / "other", "other")))
    with pytest.raises(UsageError, match="'dns' is in more than one repository; say core/dns or other/dns"):
        cat.find("dns")
    assert cat.find("other/dns").repository == "other"
    # A requirement stays in its own repository.
    order = [a.ref for a in cat.with_requirements([cat.find("other/registry")])]
    assert order == ["other/hostpath-storage", "other/registry"]


def test_requirement_cycles_are_refused(tmp_path: Path) -> None:
    import yaml

    index = {"format": 1, "description": "cyclic", "addons": [
        {"name": n, "description": n, "version": "1", "requires": [r],
         "enabled_when": {"resource": f"deployment/{n}"}, "architectures": ["amd64", "arm64"]}
        for n, r in (("a", "b"), ("b", "a"))]}
    (tmp_path / "addons.yaml").write_text(yaml.safe_dump(index))
    for n in "ab":
        (tmp_path / n).mkdir()
        (tmp_path / n / "addon.py").write_text("def enable(c): pass\ndef disable(c): pass\n")
    cat = Catalog((load(tmp_path, "cyc"),))
    with pytest.raises(UsageError, match="cycle: cyc/a -> cyc/b -> cyc/a"):
        cat.with_requirements([cat.find("a")])


def test_state_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "var" / "addons.yaml"
    state = AddonState.load(path)
    assert state.enabled == {}
    objs = [ObjectRef("v1", "Namespace", "ingress"), ObjectRef("apps/v1", "DaemonSet", "traefik", "ingress")]
    state.mark_enabled("core/ingress", "3.6.12", {"default-ssl-certificate": None}, objs)
    again = AddonState.load(path)
    assert again.enabled["core/ingress"].objects == objs
    assert again.enabled["core/ingress"].arguments == {"default-ssl-certificate": None}
    again.mark_disabled("core/ingress")
    assert AddonState.load(path).enabled == {}


def test_corrupt_state_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "addons.yaml"
    path.write_text("enabled: [1, 2]\n")
    with pytest.raises(UsageError, match="'enabled' must be a mapping"):
        AddonState.load(path)
