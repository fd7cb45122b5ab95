"""``microkube inspect``: the report is written whole under its name, or not at all."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from microkube.errors import MicrokubeError
from microkube.node import inspect
from microkube.paths import Paths


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")


def test_a_report_into_a_missing_folder_is_one_clear_line(tmp_path: Path, paths: Paths) -> None:
    target = tmp_path / "no-such-dir" / "report.tar.gz"
    with pytest.raises(MicrokubeError, match=r"cannot write the report to .*report\.tar\.gz: "
                                             "No such file or directory"):
        inspect.collect(paths, str(target), lambda line: None)
    assert not target.parent.exists()


def test_a_report_that_fails_halfway_leaves_nothing(
        tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(inspect, "_add_text", broken)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OSError, match="No space left"):
        inspect.collect(paths, str(out / "report.tar.gz"), lambda line: None)
    assert list(out.iterdir()) == []


def test_a_report_holds_versions_and_status_and_no_temporary_stays(
        tmp_path: Path, paths: Paths) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = inspect.collect(paths, str(out / "report.tar.gz"), lambda line: None)
    assert list(out.iterdir()) == [target]
    with tarfile.open(target) as tar:
        assert {"versions.json", "status.yaml"} <= set(tar.getnames())


def test_a_log_that_vanishes_or_shrinks_while_collected_does_not_end_the_report(
        tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    paths.log_dir.mkdir(parents=True)
    (paths.log_dir / "kubelite.log").write_bytes(b"x" * 4096)
    (paths.log_dir / "etcd.log").write_text("etcd says hello\n")
    (paths.log_dir / "gone.log").write_text("rotated away\n")
    real_read = Path.read_bytes

    def racing_read(self: Path) -> bytes:
        if self.name == "gone.log":
            self.unlink()  # removed between the listing and the read
        if self.name == "kubelite.log":
            self.write_bytes(b"")  # truncated by a rotation as it is read
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", racing_read)
    out = tmp_path / "out"
    out.mkdir()
    target = inspect.collect(paths, str(out / "report.tar.gz"), lambda line: None)
    with tarfile.open(target) as tar:
        names = set(tar.getnames())
        assert {"logs/kubelite.log", "logs/etcd.log", "skipped.txt"} <= names
        assert "logs/gone.log" not in names
        etcd, skipped = tar.extractfile("logs/etcd.log"), tar.extractfile("skipped.txt")
        assert etcd is not None and etcd.read() == b"etcd says hello\n"
        assert skipped is not None and skipped.read() == b"logs/gone.log: No such file or directory\n"
