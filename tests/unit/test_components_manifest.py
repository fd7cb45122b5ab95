"""The component manifest: validation, cache keys, derived go.mod, install, version parsing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from microkube.components import manifest
from microkube.components.build import Builder, BuildResult, copy_omitting, wrapper_sources
from microkube.components.cache import CacheEntry, ComponentCache, cache_key
from microkube.components.gomod import UpstreamGoMod, go_version_tuple, render
from microkube.components.versions import installed_probes, parse_version
from microkube.errors import UsageError
from microkube.paths import Paths

GOOD: dict[str, Any] = {
    "components": {
        "kubernetes": {
            "module": "k8s.io/kubernetes",
            "version": "v1.36.3",
            "replace_staging": "v0.{minor}.{patch}",
            "wrapper": "kube",
            "packages": {"kube": "."},
            "links": {"kubelet": "kube", "kubectl": "kube"},
            "ldflags": ["-X k8s.io/component-base/version.gitVersion={version}",
                        "-X k8s.io/component-base/version.gitMinor={minor}"],
            "version_command": ["kubelet", "--version"],
        },
        "cni-plugins": {
            "module": "github.com/containernetworking/plugins",
            "version": "v1.9.1",
            "why": "a reason",
            "packages": {
                "bridge": "github.com/containernetworking/plugins/plugins/main/bridge",
                "loopback": {"package": "github.com/containernetworking/plugins/plugins/main/loopback",
                             "tags": ["extra"]},
            },
            "dest": "cni",
            "version_command": ["bridge"],
        },
    }
}
TOOLCHAIN = {"go": "go1.26.8", "goos": "linux", "goarch": "amd64"}


def good() -> dict[str, Any]:
    return copy.deepcopy(GOOD)


def error_of(data: object) -> str:
    with pytest.raises(UsageError) as e:
        manifest.parse(data, Path("components.yaml"))
    return str(e.value)


# --- validation -------------------------------------------------------------------
def test_good_manifest_loads() -> None:
    mf = manifest.parse(good())
    kube = mf.get("kubernetes")
    assert kube.version == "v1.36.3"
    assert kube.staging_version == "v0.36.3"
    assert kube.expanded_ldflags == (
        "-X k8s.io/component-base/version.gitVersion=v1.36.3",
        "-X k8s.io/component-base/version.gitMinor=36",
    )
    cni = mf.get("cni-plugins")
    assert cni.dest == "cni"
    assert [b.tags for b in cni.binaries] == [(), ("extra",)]


def test_the_real_manifest_loads() -> None:
    mf = manifest.load()
    assert {"kubernetes", "containerd", "runc", "etcd", "flannel-cni", "cni-plugins"} <= set(mf.names())
    # kubelite's flanneld and netpol parts are built from these two pins.
    assert {m for m, _ in mf.get("kubernetes").requires} == {
        "github.com/flannel-io/flannel", "github.com/cloudnativelabs/kube-router/v2"}
    for c in mf.components:
        assert c.version_command, f"{c.name} has no version_command"
        if c.wrapper:
            assert (manifest.COMPONENTS_DIR / c.wrapper / "main.go").is_file()


def test_unknown_component_field() -> None:
    data = good()
    data["components"]["kubernetes"]["colour"] = "blue"
    msg = error_of(data)
    assert msg.startswith("components.yaml: component 'kubernetes': unknown field 'colour'")
    assert "\n" not in msg


@pytest.mark.parametrize("version", ["1.2.3", "v1.2", "v1.2.3.4", "latest", "v01.2.3", 1.2])
def test_malformed_version(version: object) -> None:
    data = good()
    data["components"]["cni-plugins"]["version"] = version
    msg = error_of(data)
    assert "component 'cni-plugins': malformed version" in msg
    assert "vX.Y.Z" in msg


def test_prerelease_version_is_allowed() -> None:
    data = good()
    data["components"]["cni-plugins"]["version"] = "v1.6.0-rc.1"
    assert manifest.parse(data).get("cni-plugins").version == "v1.6.0-rc.1"


def test_missing_module() -> None:
    data = good()
    del data["components"]["kubernetes"]["module"]
    assert "component 'kubernetes': missing 'module'" in error_of(data)


def test_unknown_top_level_key() -> None:
    data = good()
    data["extras"] = {}
    assert "unknown key 'extras'" in error_of(data)


def test_unknown_placeholder() -> None:
    data = good()
    data["components"]["kubernetes"]["ldflags"] = ["-X a.b={vesion}"]
    assert "unknown placeholder '{vesion}'" in error_of(data)


def test_link_to_a_binary_not_built() -> None:
    data = good()
    data["components"]["kubernetes"]["links"] = {"kubelet": "kubelett"}
    assert "link 'kubelet' points at 'kubelett'" in error_of(data)


def test_dot_package_needs_a_wrapper() -> None:
    data = good()
    del data["components"]["kubernetes"]["wrapper"]
    assert "needs a 'wrapper'" in error_of(data)


def test_two_components_may_not_install_the_same_file() -> None:
    data = good()
    data["components"]["other"] = {
        "module": "example.com/x", "version": "v1.0.0", "dest": "cni",
        "packages": {"bridge": "example.com/x/bridge"},
    }
    assert "'bridge' is also installed by 'cni-plugins'" in error_of(data)


def test_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "components.yaml"
    path.write_text("components:\n  a: [\n")
    with pytest.raises(UsageError, match=r"^components.yaml: not valid YAML at line \d+$"):
        manifest.load(path)


# --- cache keys -------------------------------------------------------------------
def key_of(data: dict[str, Any], name: str, toolchain: dict[str, str] = TOOLCHAIN,
           wrapper: dict[str, bytes] | None = None) -> str:
    return cache_key(manifest.parse(data).get(name), toolchain, wrapper or {})


def test_key_changes_when_the_entry_changes() -> None:
    base = key_of(good(), "cni-plugins")
    for field, value in [("version", "v1.9.2"), ("tags", ["x"]), ("cgo", True),
                         ("ldflags", ["-X a.b={version}"])]:
        data = good()
        data["components"]["cni-plugins"][field] = value
        assert key_of(data, "cni-plugins") != base, field


def test_key_ignores_other_components_and_prose() -> None:
    base = key_of(good(), "cni-plugins")
    data = good()
    data["components"]["kubernetes"]["version"] = "v1.36.4"
    assert key_of(data, "cni-plugins") == base
    data["components"]["cni-plugins"]["why"] = "reworded reason"
    assert key_of(data, "cni-plugins") == base
    assert key_of(data, "kubernetes") != key_of(good(), "kubernetes")


def test_key_covers_wrapper_sources_and_toolchain() -> None:
    base = key_of(good(), "kubernetes", wrapper={"main.go": b"package main"})
    assert key_of(good(), "kubernetes", wrapper={"main.go": b"package main // x"}) != base
    newer_go = {**TOOLCHAIN, "go": "go1.26.9"}
    assert key_of(good(), "kubernetes", newer_go, {"main.go": b"package main"}) != base
    assert len(base) == 12


# --- derived go.mod ---------------------------------------------------------------
UPSTREAM_GOMOD = """\
module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require k8s.io/api v0.0.0

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/kubectl => ./staging/src/k8s.io/kubectl // comment
\tgithub.com/x/y => github.com/x/y v1.0.0
)
replace k8s.io/client-go => ./staging/src/k8s.io/client-go
"""


def test_upstream_gomod_parse_and_render() -> None:
    up = UpstreamGoMod.parse(UPSTREAM_GOMOD)
    assert up.go == "1.26.0"
    assert up.godebug == ("default=go1.26",)
    assert set(up.staging) == {"k8s.io/api", "k8s.io/kubectl", "k8s.io/client-go"}
    text = render(manifest.parse(good()).get("kubernetes"), up)
    assert "module microkube.local/kubernetes\n" in text
    assert "\ngo 1.26.0\n" in text
    assert "\ngodebug default=go1.26\n" in text
    assert "\nrequire k8s.io/kubernetes v1.36.3\n" in text
    assert "\tk8s.io/kubectl => k8s.io/kubectl v0.36.3\n" in text
    assert "github.com/x/y" not in text


def test_requires_pins_more_modules_for_the_wrapper() -> None:
    data = good()
    kube = data["components"]["kubernetes"]
    kube["requires"] = {"github.com/flannel-io/flannel": "v0.28.10"}
    assert error_of(data) == ("components.yaml: component 'kubernetes': 'requires' "
                              "changes upstream's build: say why in 'why'")
    kube["why"] = "a reason"
    comp = manifest.parse(data).get("kubernetes")
    assert comp.requires == (("github.com/flannel-io/flannel", "v0.28.10"),)
    text = render(comp, UpstreamGoMod.parse(UPSTREAM_GOMOD))
    assert "\nrequire github.com/flannel-io/flannel v0.28.10\n" in text
    assert comp.build_recipe()["requires"] == [["github.com/flannel-io/flannel", "v0.28.10"]]
    # A component without it keeps the cache key it had.
    assert "requires" not in manifest.parse(good()).get("kubernetes").build_recipe()
    kube["requires"] = {"github.com/flannel-io/flannel": "latest"}
    assert "component 'kubernetes'" in error_of(data)
    cni = good()
    cni["components"]["cni-plugins"]["requires"] = {"github.com/flannel-io/flannel": "v0.28.10"}
    assert "'requires' needs a 'wrapper'" in error_of(cni)


def test_go_version_tuple() -> None:
    assert go_version_tuple("go1.26.8") == (1, 26, 8)
    assert go_version_tuple("1.26") == (1, 26, 0)
    assert go_version_tuple("1.26.6") > go_version_tuple("go1.26.5")


def test_part_versions_name_requires_modules_and_reach_the_install_record(
        tmp_path: Path) -> None:
    data = good()
    kube = data["components"]["kubernetes"]
    kube.update(why="a reason", requires={"github.com/flannel-io/flannel": "v0.28.10"},
                part_versions={"flannel": {"module": "github.com/flannel-io/flannel",
                                           "version_command": ["kube", "flanneld", "--version"]}})
    comp = manifest.parse(data).get("kubernetes")
    assert comp.part_versions == (("flannel", "github.com/flannel-io/flannel",
                                   ("kube", "flanneld", "--version")),)
    # Listing a part changes no build: the cache key stays.
    assert "part_versions" not in comp.build_recipe()
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")
    builder = Builder(manifest.parse(data), paths, cache_dir=tmp_path / "cache")
    builder.install([BuildResult(comp, fake_entry(builder.cache, comp), False, 1.0)])
    probes = {p.component: p for p in installed_probes(paths) or []}
    assert probes["flannel"].pinned == "v0.28.10"
    assert probes["flannel"].argv == (str(paths.bin_dir / "kube"), "flanneld", "--version")
    assert probes["kubernetes"].pinned == "v1.36.3"

    bad = copy.deepcopy(data)
    bad["components"]["kubernetes"]["part_versions"]["flannel"]["module"] = "github.com/x/y"
    assert error_of(bad) == ("components.yaml: component 'kubernetes': 'part_versions' entry "
                             "'flannel': module 'github.com/x/y' is not in 'requires'")
    bad = copy.deepcopy(data)
    bad["components"]["kubernetes"]["part_versions"]["flannel"]["version_command"] = ["nope"]
    assert "'part_versions' entry 'flannel' runs 'nope'" in error_of(bad)
    bad = copy.deepcopy(data)
    bad["components"]["kubernetes"]["part_versions"]["flannel"]["extra"] = 1
    assert "component 'kubernetes'" in error_of(bad)

# --- install into the snap tree -----------------------------------------------------
def fake_entry(cache: ComponentCache, comp: manifest.Component) -> CacheEntry:
    staging = cache.staging(comp.name, "0" * 12)
    for b in comp.binaries:
        (staging / "bin" / b.name).write_text(f"#!/bin/sh\necho {b.name}\n")
    return cache.commit(staging, comp.name, "0" * 12, {"binaries": {}})


def test_install_places_binaries_links_and_record(tmp_path: Path) -> None:
    mf = manifest.parse(good())
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")
    builder = Builder(mf, paths, cache_dir=tmp_path / "cache")
    kube = mf.get("kubernetes")
    entry = fake_entry(builder.cache, kube)
    builder.install([BuildResult(kube, entry, False, 1.0)])
    assert (paths.bin_dir / "kube").samefile(entry.bin_dir / "kube")
    assert (paths.bin_dir / "kubelet").readlink() == Path("kube")
    record = json.loads(paths.versions_file.read_text())["components"]
    assert record["kubernetes"]["key"] == "0" * 12
    assert record["cni-plugins"]["key"] is None  # listed, not built
    probes = {p.component: p for p in installed_probes(paths) or []}
    assert probes["kubernetes"].argv == (str(paths.bin_dir / "kubelet"), "--version")
    assert probes["cni-plugins"].argv == (str(paths.cni_bin_dir / "bridge"),)

    # A component dropped from the manifest takes its files with it.
    data = good()
    del data["components"]["kubernetes"]
    Builder(manifest.parse(data), paths, cache_dir=tmp_path / "cache").install([])
    assert not (paths.bin_dir / "kube").exists()
    assert not (paths.bin_dir / "kubelet").is_symlink()


def test_unfinished_cache_entry_is_not_found(tmp_path: Path) -> None:
    cache = ComponentCache(tmp_path)
    (cache.path("runc", "a" * 12) / "bin").mkdir(parents=True)
    assert cache.lookup("runc", "a" * 12) is None


# --- reading versions from binaries -------------------------------------------------
@pytest.mark.parametrize(("output", "version"), [
    ("Kubernetes v1.36.3", "v1.36.3"),
    ("containerd github.com/containerd/containerd/v2 v2.4.2 \n", "v2.4.2"),
    ("runc version 1.5.2\ncommit: x\nspec: 1.2.1\ngo: go1.26.8", "v1.5.2"),
    ("etcd Version: 3.6.16\nGit SHA: Not provided", "v3.6.16"),
    ("CoreDNS-1.15.0\nlinux/amd64, go1.26.8, ", "v1.15.0"),
    ("CNI bridge plugin v1.9.1\nCNI protocol versions supported: 0.1.0", "v1.9.1"),
    ("v4.3.1+g0000000", "v4.3.1"),
    ("no version here", None),
])
def test_parse_version(output: str, version: str | None) -> None:
    assert parse_version(output) == version


# --- omitted packages -----------------------------------------------------------------
def test_omit_packages_needs_a_reason() -> None:
    data = good()
    data["components"]["kubernetes"]["omit_packages"] = ["pkg/cloud"]
    assert "say why in 'why'" in error_of(data)
    data["components"]["kubernetes"]["omit_packages"] = ["../outside"]
    data["components"]["kubernetes"]["why"] = "reason"
    assert "must be a folder inside the module" in error_of(data)


def test_copy_omitting_empties_the_package(tmp_path: Path) -> None:
    mod = tmp_path / "mod"
    (mod / "pkg" / "cloud").mkdir(parents=True)
    (mod / "go.mod").write_text("module example.com/m\n")
    (mod / "pkg" / "cloud" / "cloud.go").write_text(
        '//go:build !windows\n\npackage cloudy\n\nimport "example.com/unservable"\n')
    (mod / "pkg" / "cloud" / "cloud_test.go").write_text("package cloudy\n")
    (mod / "pkg" / "cloud" / "cloud.go").chmod(0o444)
    copy_omitting(mod, tmp_path / "copy", ["pkg/cloud"])
    files = sorted(p.name for p in (tmp_path / "copy" / "pkg" / "cloud").iterdir())
    assert files == ["omitted.go"]
    text = (tmp_path / "copy" / "pkg" / "cloud" / "omitted.go").read_text()
    assert "\npackage cloudy\n" in text
    assert (mod / "pkg" / "cloud" / "cloud.go").exists()  # the original is untouched
    render_text = render(manifest.parse(good()).get("cni-plugins"),
                         UpstreamGoMod("1.26.0", (), ()), local_copy="upstream")
    assert "replace github.com/containernetworking/plugins => ./upstream" in render_text


# --- the schema: every malformed manifest is one line naming the field -------------------
def _set(path: list[str], value: object) -> dict[str, Any]:
    data = good()
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "expected"), [
    (["components", "cni-plugins", "cgo"], "yes",
     "component 'cni-plugins': 'cgo' must be true or false, not 'yes'"),
    (["components", "cni-plugins", "dest"], "sbin",
     "component 'cni-plugins': 'dest' must be one of bin, cni, not 'sbin'"),
    (["components", "cni-plugins", "tags"], "a,b",
     "component 'cni-plugins': 'tags' must be a list of build tags, not 'a,b'"),
    (["components", "cni-plugins", "tags"], ["ok", ""],
     "component 'cni-plugins': 'tags' must be a list of build tags"),
    (["components", "cni-plugins", "module"], "not a module",
     "component 'cni-plugins': 'module' must be a Go module path"),
    (["components", "cni-plugins", "why"], "  ",
     "component 'cni-plugins': 'why' must be a non-empty string"),
    (["components", "kubernetes", "links"], {"kubelet": 3},
     "component 'kubernetes': 'links' must be a mapping of link names to binary names"),
    (["components", "cni-plugins", "packages"], {},
     "component 'cni-plugins': 'packages' must be a mapping of each binary name"),
    (["components", "cni-plugins", "packages"], {"Bad Name": "example.com/x"},
     "component 'cni-plugins': binary name 'Bad Name' is not a plain file name"),
    (["components", "cni-plugins", "packages", "bridge"], {"pkg": "x"},
     "component 'cni-plugins': binary 'bridge': unknown field 'pkg'"),
    (["components", "cni-plugins", "packages", "loopback"], {"tags": ["x"]},
     "component 'cni-plugins': binary 'loopback': missing 'package'"),
    (["components", "cni-plugins", "packages", "bridge"], 7,
     "component 'cni-plugins': binary 'bridge' needs a package path"),
    (["components", "cni-plugins", "packages", "loopback", "tags"], "extra",
     "component 'cni-plugins': binary 'loopback': 'tags' must be a list of build tags"),
    (["components", "cni-plugins", "version_command"], "bridge --version",
     "component 'cni-plugins': 'version_command' must be a command line"),
    (["components", "Bad_Name"], {"module": "example.com/x"},
     "component 'Bad_Name': names are lower-case letters, digits and '-'"),
    (["components", "runc"], "v1.2.3",
     "component 'runc': expected a mapping of fields"),
    (["components"], {},
     "'components' must be a non-empty mapping"),
    (["components"], ["kubernetes"],
     "'components' must be a non-empty mapping"),
])
def test_schema_names_the_field(path: list[str], value: object, expected: str) -> None:
    msg = error_of(_set(path, value))
    assert msg.startswith("components.yaml: ")
    assert expected in msg
    assert "\n" not in msg and len(msg) < 300


@pytest.mark.parametrize("doc", [None, [], "components", 3])
def test_a_document_that_is_no_mapping(doc: object) -> None:
    assert error_of(doc) == "components.yaml: expected a mapping with a 'components' key"


def test_omit_packages_needs_why_by_schema() -> None:
    data = good()
    data["components"]["cni-plugins"]["omit_packages"] = ["pkg/cloud"]
    del data["components"]["cni-plugins"]["why"]
    assert error_of(data) == ("components.yaml: component 'cni-plugins': 'omit_packages' "
                              "changes upstream's build: say why in 'why'")


def test_missing_packages_and_version_are_named() -> None:
    data = good()
    del data["components"]["cni-plugins"]["packages"]
    assert "component 'cni-plugins': missing 'packages'" in error_of(data)
    data = good()
    del data["components"]["cni-plugins"]["version"]
    assert "component 'cni-plugins': missing 'version'" in error_of(data)
    assert error_of({}) == "components.yaml: missing 'components'"


def test_the_schema_itself_is_valid() -> None:
    import jsonschema

    from microkube.components.schema import MANIFEST_SCHEMA

    jsonschema.Draft202012Validator.check_schema(MANIFEST_SCHEMA)


# --- shared Go sources ------------------------------------------------------------
def test_shared_folders_join_the_wrapper_and_its_cache_key(tmp_path: Path) -> None:
    (tmp_path / "kube").mkdir()
    (tmp_path / "kube" / "main.go").write_bytes(b"package main")
    (tmp_path / "pageout").mkdir()
    (tmp_path / "pageout" / "pageout.go").write_bytes(b"package main // v1")
    data = good()
    data["components"]["kubernetes"]["shared"] = ["pageout"]
    comp = manifest.parse(data).get("kubernetes")
    assert comp.shared == ("pageout",)
    assert comp.build_recipe()["shared"] == ["pageout"]
    files = wrapper_sources(comp, tmp_path)
    assert files == {"main.go": b"package main", "pageout.go": b"package main // v1"}
    key = cache_key(comp, TOOLCHAIN, files)
    (tmp_path / "pageout" / "pageout.go").write_bytes(b"package main // v2")
    assert cache_key(comp, TOOLCHAIN, wrapper_sources(comp, tmp_path)) != key
    # A component without it keeps the cache key it had.
    assert "shared" not in manifest.parse(good()).get("kubernetes").build_recipe()


def test_shared_file_may_not_shadow_a_wrapper_file(tmp_path: Path) -> None:
    for folder in ("kube", "pageout"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "main.go").write_bytes(b"package main")
    data = good()
    data["components"]["kubernetes"]["shared"] = ["pageout"]
    comp = manifest.parse(data).get("kubernetes")
    with pytest.raises(UsageError, match=r"shared file .*main\.go has the name of a file"):
        wrapper_sources(comp, tmp_path)
    data["components"]["kubernetes"]["shared"] = ["missing"]
    with pytest.raises(UsageError, match=r"shared folder .*missing has no \.go file"):
        wrapper_sources(manifest.parse(data).get("kubernetes"), tmp_path)


def test_shared_needs_a_wrapper_and_plain_folder_names() -> None:
    data = good()
    data["components"]["cni-plugins"]["shared"] = ["pageout"]
    assert "'shared' needs a 'wrapper'" in error_of(data)
    data = good()
    data["components"]["kubernetes"]["shared"] = ["../etc"]
    assert error_of(data).startswith("components.yaml: component 'kubernetes': 'shared' must be")
    data["components"]["kubernetes"]["shared"] = ["kube"]
    assert "is the wrapper itself" in error_of(data)


def test_the_daemons_share_one_page_release_source() -> None:
    """kube, etcd, containerd and kine build components/pageout into their own main."""
    real = manifest.load()
    for name in ("kubernetes", "etcd", "containerd", "kine"):
        files = wrapper_sources(real.get(name))
        assert b"func releaseStartupPages()" in files["pageout.go"], name
        own = {k: v for k, v in files.items() if k != "pageout.go"}
        assert all(b"func releaseStartupPages()" not in v for v in own.values()), name
