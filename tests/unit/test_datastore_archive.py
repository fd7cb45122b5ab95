"""The backup file: written 0600 and atomically; everything that is not a sound backup refused."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from microkube.datastore import archive
from microkube.datastore.archive import BackupFileError


def _manifest(files: dict[str, Path]) -> archive.Manifest:
    return archive.Manifest(
        created="2026-11-29T22:00:00+00:00", node={"name": "n1"},
        datastore={"kind": "etcd", "version": "3.6.16"},
        files={n: archive.file_digest(p) for n, p in files.items()}, microkube_version="0.1")


@pytest.fixture
def members(tmp_path: Path) -> dict[str, Path]:
    snap = tmp_path / "snapshot.db"
    snap.write_bytes(os.urandom(300_000))
    cfg = tmp_path / "encryption-config.yaml"
    cfg.write_text("kind: EncryptionConfiguration\n")
    return {archive.SNAPSHOT: snap, archive.ENCRYPTION_CONFIG: cfg}


@pytest.fixture
def good(tmp_path: Path, members: dict[str, Path]) -> Path:
    dest = tmp_path / "out" / "b.tar.gz"
    archive.write(dest, _manifest(members), members)
    return dest


def _tar(dest: Path, entries: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def test_round_trip_is_private_and_exact(tmp_path: Path, good: Path,
                                         members: dict[str, Path]) -> None:
    assert good.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in good.parent.iterdir()] == ["b.tar.gz"]  # no temp file left
    into = tmp_path / "x"
    into.mkdir()
    m = archive.extract(good, into)
    assert m.node == {"name": "n1"} and m.datastore["version"] == "3.6.16"
    for name, src in members.items():
        assert (into / name).read_bytes() == src.read_bytes()
        assert (into / name).stat().st_mode & 0o777 == 0o600


def _refused(tmp_path: Path, path: Path, words: str) -> None:
    into = tmp_path / "into"
    into.mkdir(parents=True, exist_ok=True)
    with pytest.raises(BackupFileError) as e:
        archive.extract(path, into)
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_and_foreign_files_are_refused(tmp_path: Path) -> None:
    _refused(tmp_path, tmp_path / "nope.tar.gz", "no such file")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    _refused(tmp_path, text, "not a microkube backup")
    other = _tar(tmp_path / "other.tar.gz", [("README", b"x")])
    _refused(tmp_path, other, f"no {archive.MANIFEST} at its start")
    wrong = _tar(tmp_path / "wrong.tar.gz", [(archive.MANIFEST, b'{"format": "k3s"}')])
    _refused(tmp_path, wrong, "does not say format microkube-backup")


def test_a_newer_format_is_refused(tmp_path: Path) -> None:
    doc = {"format": archive.FORMAT, "format_version": archive.FORMAT_VERSION + 1}
    newer = _tar(tmp_path / "n.tar.gz", [(archive.MANIFEST, json.dumps(doc).encode())])
    _refused(tmp_path, newer, "format version 2")


def test_a_flipped_byte_is_refused(tmp_path: Path, good: Path) -> None:
    with tarfile.open(good) as tar:
        entries = [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    name, data = entries[1]
    entries[1] = (name, data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    _refused(tmp_path, _tar(tmp_path / "flip.tar.gz", entries), "corrupt: snapshot.db")


def test_truncated_and_extra_members_are_refused(tmp_path: Path, good: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _refused(tmp_path / "a", cut, "")
    with tarfile.open(good) as tar:
        entries = [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    _refused(tmp_path / "b", _tar(tmp_path / "extra.tar.gz", [*entries, ("../evil", b"x")]),
             "unexpected member '../evil'")
    _refused(tmp_path / "c", _tar(tmp_path / "short.tar.gz", entries[:2]),
             "incomplete: encryption-config.yaml missing")


def test_a_file_that_cannot_be_opened_is_named_so_not_a_damaged_archive(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    _refused(tmp_path, loop, "loop: cannot be read (Too many levels of symbolic links)")


def test_a_member_that_inflates_past_its_manifest_size_stops_there(
        tmp_path: Path, members: dict[str, Path]) -> None:
    manifest = _manifest(members)  # says snapshot.db is 300 kB
    entries = [(archive.MANIFEST, manifest.to_json().encode()),
               (archive.SNAPSHOT, bytes(20_000_000))]  # 20 MB of zeros: ~20 kB gzipped
    into = tmp_path / "into"
    _refused(tmp_path, _tar(tmp_path / "bomb.tar.gz", entries), "corrupt: snapshot.db")
    written = (into / archive.SNAPSHOT).stat().st_size
    assert written <= members[archive.SNAPSHOT].stat().st_size, written


def test_a_plain_gzip_is_not_a_backup(tmp_path: Path) -> None:
    g = tmp_path / "x.gz"
    g.write_bytes(gzip.compress(b"just some bytes" * 100))
    _refused(tmp_path, g, "not a microkube backup")


def test_a_restore_killed_between_its_renames_is_undone(tmp_path: Path) -> None:
    from microkube.datastore.backup import BEFORE_RESTORE, recover_interrupted

    live = tmp_path / "etcd"
    aside = tmp_path / f"etcd{BEFORE_RESTORE}"
    aside.mkdir()
    (aside / "member").write_text("old data")
    recover_interrupted(live)  # killed after moving the old data aside: it comes back
    assert (live / "member").read_text() == "old data" and not aside.exists()
    aside.mkdir()
    recover_interrupted(live)  # killed after the swap: the stale copy goes
    assert live.exists() and not aside.exists()
