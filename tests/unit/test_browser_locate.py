"""The browser test finds Chromium and chromedriver under any of their packaged names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import browser


def _tool(folder: Path, name: str, mode: int = 0o755) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def test_locate_takes_the_first_that_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = _tool(tmp_path / "bin", "chromium-browser")
    _tool(tmp_path / "bin", "chromium", mode=0o644)  # there, but cannot run
    fixed = _tool(tmp_path / "lib", "chromedriver")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert browser.locate(("chromium", "chromium-browser")) == str(on_path)
    assert browser.locate(("chromedriver", str(fixed))) == str(fixed)
    assert browser.locate(("chromedriver", str(tmp_path / "lib" / "nope"))) is None


def test_find_tools_needs_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "BROWSERS", (str(_tool(tmp_path, "chromium")),))
    monkeypatch.setattr(browser, "DRIVERS", (str(tmp_path / "missing-driver"),))
    assert browser.find_tools() is None
    monkeypatch.setattr(browser, "DRIVERS", (str(_tool(tmp_path, "chromedriver")),))
    assert browser.find_tools() == (str(tmp_path / "chromium"), str(tmp_path / "chromedriver"))
