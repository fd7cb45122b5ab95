"""Added repositories: from a folder or a git URL, validated before they are installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from microkube.addons import repos
from microkube.addons.catalog import Catalog
from microkube.addons.listing import addon_statuses
from microkube.addons.state import AddonState
from microkube.errors import MicrokubeError, UsageError
from microkube.paths import CHECKOUT, Paths


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")


def _community(dest: Path, description: str = "Say hello") -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "addons.yaml").write_text(yaml.safe_dump({
        "format": 1, "description": "community addons",
        "addons": [{"name": "hello", "description": description, "version": "0.1",
                    "enabled_when": {"resource": "configmap/hello", "namespace": "default"},
                    "architectures": ["amd64", "arm64"], "requires": ["core/dns"]}]}))
    (dest / "hello").mkdir(exist_ok=True)
    (dest / "hello" / "addon.py").write_text("def enable(ctx): pass\ndef disable(ctx): pass\n")
    return dest


def _say() -> tuple[list[str], repos.Say]:
    lines: list[str] = []
    return lines, lines.append


def test_add_from_a_folder_and_find_its_addons(paths: Paths, tmp_path: Path) -> None:
    src = _community(tmp_path / "src")
    lines, say = _say()
    repos.add(paths, "community", str(src), None, False, say)
    assert lines[0].startswith("added repository community at revision ")
    cat = Catalog.load(paths)
    hello = cat.find("hello")
    assert hello.ref == "community/hello"
    assert [a.ref for a in cat.with_requirements([hello])] == ["core/dns", "community/hello"]
    assert [r.name for r in repos.rows(paths)] == ["core", "community"]
    listed = addon_statuses(paths, {})
    assert any(a.name == "hello" and a.repository == "community" and a.description == "Say hello"
               and a.status == "disabled" for a in listed)


def test_add_refuses_bad_names_duplicates_and_invalid_repositories(paths: Paths,
                                                                  tmp_path: Path) -> None:
    src = _community(tmp_path / "src")
    _, say = _say()
    with pytest.raises(UsageError, match="'core' is the repository that ships"):
        repos.add(paths, "core", str(src), None, False, say)
    with pytest.raises(UsageError, match="not a valid repository name"):
        repos.add(paths, "Bad Name", str(src), None, False, say)
    with pytest.raises(UsageError, match="neither a folder nor a git URL"):
        repos.add(paths, "x", str(tmp_path / "nowhere"), None, False, say)
    repos.add(paths, "community", str(src), None, False, say)
    with pytest.raises(UsageError, match="exists; use --force"):
        repos.add(paths, "community", str(src), None, False, say)
    broken = _community(tmp_path / "broken")
    (broken / "addons.yaml").write_text("format: 1\ndescription: x\naddons: [{name: y}]\n")
    wanted = r"broken.*/addons.yaml: addons\[0\] \(y\): 'description' is missing"
    with pytest.raises(UsageError, match=wanted):
        repos.add(paths, "broken", str(broken), None, False, say)
    assert not (paths.addon_repos_dir / "broken").exists()
    assert [p.name for p in paths.addon_repos_dir.iterdir() if p.name.startswith(".")] == []


def test_update_installs_a_valid_revision_and_rolls_back_an_invalid_one(paths: Paths,
                                                                        tmp_path: Path) -> None:
    src = _community(tmp_path / "src")
    lines, say = _say()
    repos.add(paths, "community", str(src), None, False, say)
    repos.update(paths, "community", say)
    assert "is up to date" in lines[-1]
    _community(src, description="Say hello, twice")
    repos.update(paths, "community", say)
    assert lines[-1].startswith("updated community: ")
    assert Catalog.load(paths).find("hello").description == "Say hello, twice"
    good_revision = repos.rows(paths)[1].revision
    (src / "addons.yaml").write_text("format: 2\n")
    with pytest.raises(MicrokubeError) as e:
        repos.update(paths, "community", say)
    assert f"stays at revision {good_revision}" in str(e.value)
    assert "addons.yaml" in str(e.value) and "\n" not in str(e.value)
    assert Catalog.load(paths).find("hello").description == "Say hello, twice"


def test_update_refuses_to_drop_an_enabled_addon(paths: Paths, tmp_path: Path) -> None:
    src = _community(tmp_path / "src")
    _, say = _say()
    repos.add(paths, "community", str(src), None, False, say)
    AddonState.load(paths.addons_state_file).mark_enabled("community/hello", "0.1", {}, [])
    index = yaml.safe_load((src / "addons.yaml").read_text())
    index["addons"][0]["name"] = "bye"
    (src / "addons.yaml").write_text(yaml.safe_dump(index))
    shutil.move(src / "hello", src / "bye")
    with pytest.raises(MicrokubeError, match="drops enabled addons hello"):
        repos.update(paths, "community", say)
    with pytest.raises(UsageError, match="hello are enabled; disable them first"):
        repos.remove(paths, "community", say)


def test_remove(paths: Paths, tmp_path: Path) -> None:
    _, say = _say()
    repos.add(paths, "community", str(_community(tmp_path / "src")), None, False, say)
    repos.remove(paths, "community", say)
    assert not (paths.addon_repos_dir / "community").exists()
    assert [r.name for r in repos.rows(paths)] == ["core"]
    with pytest.raises(UsageError, match="no repository named 'community'"):
        repos.remove(paths, "community", say)
    with pytest.raises(UsageError, match="cannot be removed"):
        repos.remove(paths, "core", say)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_broken_folder_is_named_where_the_user_can_fix_it(paths: Paths, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError) as err:
        repos.add(paths, "x", str(empty), None, False, _say()[1])
    assert str(err.value) == f"{empty}/addons.yaml: missing; an addon repository needs an addons.yaml"


@pytest.mark.parametrize("make, words", [
    # Two links to '.' followed would copy 2^40 folders: refused at once.
    (lambda d: [(d / "a").symlink_to("."), (d / "b").symlink_to(".")], "a link to a folder"),
    (lambda d: (d / "gone").symlink_to(d / "nowhere"), "a link to a folder, or to nothing"),
    (lambda d: os.mkfifo(d / "pipe"), "pipe: cannot be copied (.* is a named pipe)"),
])
def test_links_and_special_files_in_a_folder_are_one_line_and_leave_nothing(
        paths: Paths, tmp_path: Path, make: Callable[[Path], object], words: str) -> None:
    src = _community(tmp_path / "src")
    make(src)
    with pytest.raises(UsageError, match=words):
        repos.add(paths, "community", str(src), None, False, _say()[1])
    assert list(paths.addon_repos_dir.iterdir()) == []


def test_a_git_failure_says_what_failed_not_git_s_advice(paths: Paths, tmp_path: Path) -> None:
    with pytest.raises(MicrokubeError) as err:
        repos.add(paths, "nope", f"file://{tmp_path}", None, False, _say()[1])
    assert "does not appear to be a git repository" in str(err.value), str(err.value)


def test_git_repository_by_url(paths: Paths, tmp_path: Path) -> None:
    src = _community(tmp_path / "gitsrc")

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(src), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "one")
    _, say = _say()
    url = f"file://{src}"
    repos.add(paths, "gitrepo", url, "main", False, say)
    assert Catalog.load(paths).find("gitrepo/hello").version == "0.1"
    (src / "addons.yaml").write_text("not: [valid\n")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qam", "broken")
    with pytest.raises(MicrokubeError, match="update of gitrepo failed, it stays at revision"):
        repos.update(paths, "gitrepo", say)
    assert Catalog.load(paths).find("gitrepo/hello").version == "0.1"
    with pytest.raises(MicrokubeError, match="cloning"):
        repos.add(paths, "nope", f"file://{tmp_path}/missing.git", None, False, say)


def test_status_lists_core_addons_without_a_cluster(paths: Paths) -> None:
    listed = addon_statuses(paths, {})
    assert all(a.repository == "core" for a in listed if a.enabled)
    names = {a.name for a in listed}
    assert {"dns", "ingress", "hostpath-storage", "registry", "dashboard"} <= names
    AddonState.load(paths.addons_state_file).mark_enabled("core/dns", "1.15.0", {}, [])
    dns = next(a for a in addon_statuses(paths, {}) if a.name == "dns")
    assert dns.record() == {"name": "dns", "repository": "core", "description": "CoreDNS, the cluster DNS",
                            "version": dns.version, "status": "enabled"}


def test_core_dir_is_the_checkout_outside_a_snap(paths: Paths) -> None:
    assert paths.core_addons_dir == CHECKOUT / "addons"


def test_an_unreadable_record_or_state_names_its_file_once(paths: Paths) -> None:
    from microkube.addons.sources import RepoRegistry

    paths.common.parent.mkdir(parents=True, exist_ok=True)
    paths.common.write_text("a file where a folder should be")
    with pytest.raises(UsageError) as err:
        RepoRegistry(paths).entries()
    assert str(err.value).endswith("repositories.yaml: cannot read the repository record "
                                   "(Not a directory)")
    paths.data.write_text("a file too")
    with pytest.raises(UsageError) as err:
        AddonState.load(paths.addons_state_file)
    assert str(err.value).endswith("addons.yaml: cannot read the addon state (Not a directory)")
