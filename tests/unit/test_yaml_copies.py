"""yamlerrors.read: the JSON copy answers while the file is unchanged, never after."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from microkube import yamlerrors
from microkube.fsutil import write_atomic


def test_copy_answers_until_the_file_changes(tmp_path: Path) -> None:
    src, cache = tmp_path / "settings.yaml", tmp_path / "cache"
    write_atomic(src, "a: 1\nb: [x, y]\n")
    assert not yamlerrors.has_current_copy(src, cache)
    assert yamlerrors.read(src, cache) == {"a": 1, "b": ["x", "y"]}
    assert yamlerrors.has_current_copy(src, cache)
    (copy,) = cache.iterdir()
    # A second read answers from the copy: prove it by planting a different document there.
    copy.write_text(copy.read_text().replace('"a": 1', '"a": 2'))
    assert yamlerrors.read(src, cache) == {"a": 2, "b": ["x", "y"]}
    write_atomic(src, "a: 3\nb: []\n")  # a new inode: the copy is stale
    assert not yamlerrors.has_current_copy(src, cache)
    assert yamlerrors.read(src, cache) == {"a": 3, "b": []}
    with src.open("a") as f:  # an edit in place changes size and mtime
        f.write("c: true\n")
    assert yamlerrors.read(src, cache) == {"a": 3, "b": [], "c": True}


def test_documents_json_cannot_hold_are_never_copied(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for i, text in enumerate(("1: one\n", "when: 2024-01-01\n")):
        src = tmp_path / f"f{i}.yaml"
        src.write_text(text)
        first = yamlerrors.read(src, cache)
        assert yamlerrors.read(src, cache) == first == yamlerrors.parse(text)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_private_file_gets_a_private_copy(tmp_path: Path) -> None:
    src, cache = tmp_path / "secret.yaml", tmp_path / "cache"
    write_atomic(src, "token: x\n", mode=0o600)
    yamlerrors.read(src, cache)
    (copy,) = cache.iterdir()
    assert copy.stat().st_mode & 0o777 == 0o600


def test_errors_are_the_readers(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        yamlerrors.read(tmp_path / "missing.yaml", tmp_path / "cache")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1\nb: 2\n")
    with pytest.raises(yamlerrors.YamlError) as e:
        yamlerrors.read(bad, tmp_path / "cache")
    assert e.value.where.startswith(" at line ")
    assert "\n" not in str(e.value) and str(e.value).endswith(e.value.where), str(e.value)
    bad.write_bytes(b"\xff\x00")  # bytes that are no text: the parser's error too, one line
    with pytest.raises(yamlerrors.YamlError) as e:
        yamlerrors.read(bad, tmp_path / "cache")
    assert str(e.value) == "unacceptable character #x00ff: invalid leading UTF-8 octet"


def test_an_unwritable_cache_still_reads(tmp_path: Path) -> None:
    src = tmp_path / "a.yaml"
    src.write_text("a: 1\n")
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    assert yamlerrors.read(src, blocker) == {"a": 1}
    assert os.path.isfile(blocker)
