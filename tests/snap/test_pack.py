"""`snap pack` accepts the snap microkube builds and refuses a broken one; the packed
snap holds every file the apps, hooks and daemons expect, where they expect it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from microkube.snap import project, snapyaml, tree

pytestmark = pytest.mark.components

# The launchers snap pack looks at (app commands, hooks): a small tree that packs in a
# second but carries the real meta/snap.yaml and hooks.
SKELETON = ("bin/microkube", "bin/microkube-daemon", "bin/microkube-hook", "meta/snap.yaml",
            *(f"meta/hooks/{h}" for h in tree.HOOKS))


def _skeleton(prime: Path, dest: Path) -> Path:
    for rel in SKELETON:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(prime / rel, dest / rel)
    return dest


def _pack(snap_tool: str, src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([snap_tool, "pack", "--compression=lzo", "--filename=t.snap",
                           str(src), str(out)], capture_output=True, text=True, timeout=120)


def test_snap_pack_checks_the_whole_tree(snap_tool: str, prime: Path) -> None:
    proc = subprocess.run([snap_tool, "pack", "--check-skeleton", str(prime)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert tree.missing_paths(prime) == []


def test_snap_pack_packs_the_real_metadata(snap_tool: str, prime: Path, tmp_path: Path) -> None:
    src = _skeleton(prime, tmp_path / "tree")
    proc = _pack(snap_tool, src, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "t.snap").stat().st_size > 0


# What is broken -> (how, the words of snap pack's refusal).
BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "a bad restart condition": (lambda d: d["apps"]["daemon-etcd"].update(
        {"restart-condition": "sometimes"}), "invalid restart condition"),
    "a command that is not in the snap": (lambda d: d["apps"]["daemon-kubelite"].update(
        {"command": "bin/no-such-launcher kubelite"}), '"bin/no-such-launcher" does not exist'),
    "an invalid snap name": (lambda d: d.update({"name": "Microkube_"}), "invalid snap name"),
    "no version": (lambda d: d.pop("version"), "invalid snap version"),
    "an unknown confinement": (lambda d: d.update({"confinement": "loose"}),
                               "invalid confinement type"),
    "ordering after an app that is no daemon": (lambda d: d["apps"]["daemon-etcd"].update(
        {"after": ["kubectl"]}), "before/after references"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_snap_pack_refuses_a_broken_snap_yaml(snap_tool: str, prime: Path, tmp_path: Path,
                                              breakage: str) -> None:
    src = _skeleton(prime, tmp_path / "tree")
    doc = yaml.safe_load((src / "meta" / "snap.yaml").read_text())
    change, reason = BREAKAGES[breakage]
    change(doc)
    (src / "meta" / "snap.yaml").write_text(yaml.safe_dump(doc))
    proc = _pack(snap_tool, src, tmp_path)
    assert proc.returncode != 0, f"snap pack accepted {breakage}"
    assert not (tmp_path / "t.snap").exists()
    assert reason in proc.stderr, proc.stderr


def _listing(snap_file: Path) -> dict[str, str]:
    """Path inside the snap -> the mode column of `unsquashfs -ll`."""
    out = subprocess.run(["unsquashfs", "-lls", str(snap_file)], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    entries = {}
    for line in out.splitlines():
        if " squashfs-root" not in line:
            continue
        mode, rest = line.split()[0], line.split(" squashfs-root", 1)[1]
        entries[rest.split(" -> ")[0].lstrip("/")] = mode
    return entries


def test_packed_snap_holds_binaries_addons_and_images_where_the_apps_expect_them(
        snap_file: Path) -> None:
    entries = _listing(snap_file)
    missing = [p for p in tree.required_paths() if p not in entries]
    assert not missing, f"{snap_file.name} lacks {missing}"
    for rel in ("bin/kube", "bin/containerd", "bin/runc", "bin/etcd", "bin/microkube",
                "meta/hooks/install", "opt/cni/bin/bridge", "bin/ipset", "usr/sbin/ipset"):
        assert entries[rel].startswith("-rwx"), (rel, entries[rel])
    for name in tree.IMAGE_ONLY:  # carried by their images only
        assert f"bin/{name}" not in entries
    # ipset's own library comes along; the C library is the base's (or the host's), not ours.
    libs = [e for e in entries if e.startswith("usr/lib/")]
    assert any("/libipset.so.13" in e for e in libs), libs
    assert not any("/libc.so" in e for e in libs), libs


def test_packed_metadata_is_snapcraft_yaml_rendered(snap_file: Path) -> None:
    shown = subprocess.run(["unsquashfs", "-cat", str(snap_file), "meta/snap.yaml"],
                           capture_output=True, text=True, check=True, timeout=120).stdout
    meta = yaml.safe_load(shown)
    proj = project.load()
    assert shown == snapyaml.render(proj, str(meta["version"]), "amd64")
    assert snap_file.name == f"microkube_{meta['version']}_amd64.snap"
