"""status's click-free option parser: plain forms parse, anything else goes to click."""

from __future__ import annotations

import subprocess
import sys

import pytest

from microkube.cli.statuscmd import DEFAULT_TIMEOUT, fast_options


@pytest.mark.parametrize(("args", "expected"), [
    ([], ("pretty", False, DEFAULT_TIMEOUT)),
    (["--format", "yaml"], ("yaml", False, DEFAULT_TIMEOUT)),
    (["--format=short", "--wait-ready"], ("short", True, DEFAULT_TIMEOUT)),
    (["--wait-ready", "--timeout", "30"], ("pretty", True, 30)),
    (["--timeout=5", "--format", "yaml", "--wait-ready"], ("yaml", True, 5)),
])
def test_plain_options_parse_without_click(args: list[str], expected: tuple[str, bool, int]) -> None:
    assert fast_options(args) == expected


@pytest.mark.parametrize("args", [
    ["--help"], ["-h"], ["--format", "bad"], ["--format"], ["--timeout", "-1"],
    ["--timeout", "x"], ["--wait-ready=1"], ["extra"], ["--formatyaml"],
])
def test_anything_else_is_left_to_click(args: list[str]) -> None:
    assert fast_options(args) is None


def test_status_never_imports_click(tmp_path: object) -> None:
    """A node that was never set up: status answers (exit 3) and click stays unloaded."""
    code = ("import sys\nfrom microkube.cli import main\n"
            "try:\n    main(['status', '--format', 'yaml'])\n"
            "except SystemExit as e:\n    print(e.code, 'click' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"MICROKUBE_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin",
                              "PYTHONDONTWRITEBYTECODE": "1"},
                         check=True).stdout
    assert out.splitlines()[-1] == "3 False"
    assert "state: not-set-up" in out


def test_bad_format_still_gets_clicks_usage_error(tmp_path: object) -> None:
    proc = subprocess.run([sys.executable, "-m", "microkube", "status", "--format", "bad"],
                          capture_output=True, text=True,
                          env={"MICROKUBE_ROOT": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 2
    assert "Invalid value for '--format'" in proc.stderr
