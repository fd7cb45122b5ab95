"""The addon repository format: the core repository is valid, broken ones get one clear line."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from microkube.addons import repository
from microkube.addons.repository import RepositoryError
from microkube.components.manifest import load as load_components
from microkube.paths import CHECKOUT

CORE = CHECKOUT / "addons"


def _repo(tmp_path: Path, index: dict[str, Any], folders: tuple[str, ...] = ()) -> Path:
    (tmp_path / "addons.yaml").write_text(yaml.safe_dump(index))
    for name in folders:
        (tmp_path / name).mkdir()
        (tmp_path / name / "addon.py").write_text("def enable(ctx): pass\ndef disable(ctx): pass\n")
    return tmp_path


def _addon(name: str = "demo", **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": "A demo", "version": "1.0",
            "enabled_when": {"resource": "deployment/demo", "namespace": "default"},
            "architectures": ["amd64", "arm64"], **extra}


def _index(*addons: dict[str, Any]) -> dict[str, Any]:
    return {"format": 1, "description": "test repo", "addons": list(addons)}


def test_core_repository_is_valid() -> None:
    repo = repository.load(CORE, "core")
    names = [a.name for a in repo.addons]
    assert names == ["dns", "ingress", "hostpath-storage", "metrics-server", "registry",
                     "dashboard", "metallb", "rbac", "helm"]
    assert repo.get("storage") is repo.get("hostpath-storage")
    assert repo.get("registry") is not None and repo.get("registry").requires == (  # type: ignore[union-attr]
        "core/hostpath-storage",)


def test_core_addon_versions_match_the_pinned_components() -> None:
    comps = {c.name: c.version.removeprefix("v") for c in load_components().components}
    repo = repository.load(CORE, "core")
    for addon, component in (("dns", "coredns"), ("hostpath-storage", "local-path-provisioner"),
                             ("metrics-server", "metrics-server"), ("registry", "registry"),
                             ("helm", "helm")):
        spec = repo.get(addon)
        assert spec is not None and spec.version == comps[component], addon


def test_ingress_version_matches_the_traefik_pin() -> None:
    from microkube.images.addon_recipes import TRAEFIK_VERSION

    spec = repository.load(CORE, "core").get("ingress")
    assert spec is not None and spec.version == TRAEFIK_VERSION.removeprefix("v")


def test_metallb_version_matches_its_pin_and_vendored_manifests() -> None:
    from microkube.images.addon_recipes import METALLB_VERSION

    spec = repository.load(CORE, "core").get("metallb")
    assert spec is not None and spec.version == METALLB_VERSION.removeprefix("v")
    # The CRDs and RBAC are copied from the module: they must come from the version built.
    for name in ("10-crds.yaml.j2", "20-rbac.yaml.j2"):
        head = (CORE / "metallb" / name).read_text().splitlines()[:2]
        assert f"go.universe.tf/metallb@{METALLB_VERSION} " in " ".join(head) + " ", name


def test_every_core_addon_folder_has_logic_and_no_shell_scripts() -> None:
    for folder in CORE.iterdir():
        if folder.is_dir() and not folder.name.startswith((".", "__")):
            assert (folder / "addon.py").is_file(), folder
            assert not list(folder.glob("*.sh")), folder


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda a: a.pop("version"), "addons[0] (demo): 'version' is missing"),
    (lambda a: a.update(colour="red"), "addons[0] (demo): unknown key 'colour'"),
    (lambda a: a.update(name="Bad_Name"), "addons[0] (Bad_Name).name: 'Bad_Name' is not a valid value"),
    (lambda a: a.update(architectures=["vax"]), "addons[0] (demo).architectures[0]: 'vax' is not one of"),
    (lambda a: a.update(enabled_when={"resource": "deployment/x", "bundled": "x"}),
     "enabled_when: give exactly one of"),
    (lambda a: a.update(arguments=[{"name": "x", "type": "colour", "help": "h"}]),
     "addons[0] (demo).arguments[0] (x).type: 'colour' is not one of"),
    (lambda a: a.update(requires="dns"), "addons[0] (demo).requires: expected array, got str"),
])
def test_schema_errors_name_file_and_field(tmp_path: Path, mutate: Any, expected: str) -> None:
    addon = _addon()
    mutate(addon)
    _repo(tmp_path, _index(addon), ("demo",))
    with pytest.raises(RepositoryError) as e:
        repository.load(tmp_path, "test")
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "addons.yaml") + ": "), msg
    assert expected in msg
    assert "\n" not in msg


def test_missing_index_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match=r"addons\.yaml: missing"):
        repository.load(tmp_path, "test")
    (tmp_path / "addons.yaml").write_text("format: 1\naddons: [\n")
    with pytest.raises(RepositoryError, match=r"not valid YAML at line \d"):
        repository.load(tmp_path, "test")


def test_rules_beyond_the_schema(tmp_path: Path) -> None:
    cases = [
        (_index(_addon(), _addon("other", aliases=["demo"])), ("demo", "other"),
         "'demo' is already used by demo"),
        (_index(_addon()), (), "folder"),
        (_index(_addon(requires=["ghost"])), ("demo",), "'ghost' is not an addon of this repository"),
        (_index(_addon(arguments=[{"name": "a", "type": "choice", "help": "h"}])), ("demo",),
         "choices: needed exactly when type is 'choice'"),
        (_index(_addon(arguments=[{"name": "a", "type": "flag", "help": "h", "default": "yes"}])),
         ("demo",), "default: expected a bool"),
        (_index(_addon(arguments=[{"name": "a", "type": "string", "help": "h", "positional": True},
                                  {"name": "b", "type": "string", "help": "h", "positional": True}])),
         ("demo",), "only one argument may be positional"),
    ]
    for i, (index, folders, expected) in enumerate(cases):
        d = tmp_path / str(i)
        d.mkdir()
        _repo(d, index, folders)
        with pytest.raises(RepositoryError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            repository.load(d, "test")


def test_addon_without_hooks_file(tmp_path: Path) -> None:
    _repo(tmp_path, _index(_addon()), ("demo",))
    (tmp_path / "demo" / "addon.py").unlink()
    with pytest.raises(RepositoryError, match=r"addon\.py is missing"):
        repository.load(tmp_path, "test")


def test_copy_of_core_loads_under_another_name(tmp_path: Path) -> None:
    shutil.copytree(CORE, tmp_path / "copy")
    repo = repository.load(tmp_path / "copy", "mine")
    reg = repo.get("registry")
    assert reg is not None and reg.requires == ("mine/hostpath-storage",)
