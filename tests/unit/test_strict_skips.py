"""Strict skips: the allow-list, the matching, and the plugin failing a real pytest run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import strict_skips
from tests.strict_skips import AllowedSkip, AllowListError, Skip, StrictSkips

LIST = """\
# a comment, then a blank line

needs root  # the CI runner is root; kept here only as an example
addon images not built: *  # an example with a wildcard
"""


def test_parse_reads_patterns_and_whys() -> None:
    assert strict_skips.parse_allowed(LIST, "list") == [
        AllowedSkip("needs root", "the CI runner is root; kept here only as an example"),
        AllowedSkip("addon images not built: *", "an example with a wildcard"),
    ]


@pytest.mark.parametrize("line", ["needs root", "needs root #   ", "needs root#why"])
def test_parse_refuses_an_entry_without_a_why(line: str) -> None:
    with pytest.raises(AllowListError, match=r"^list:3: an allowed skip needs ' # ' and why"):
        strict_skips.parse_allowed(f"# ok\n\n{line}\n", "list")


def test_the_shipped_list_parses_and_every_entry_says_why() -> None:
    for entry in strict_skips.load_allowed():
        assert entry.pattern and entry.why


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AllowListError, match=r"cannot read the allowed skips .*nope\.txt"):
        strict_skips.load_allowed(tmp_path / "nope.txt")


def test_offending_keeps_only_skips_no_entry_matches() -> None:
    allowed = strict_skips.parse_allowed(LIST, "list")
    skips = [Skip("a", "needs root"), Skip("b", "addon images not built: dashboard"),
             Skip("c", "components are not built"), Skip("d", "needs root, and more")]
    assert strict_skips.offending(skips, allowed) == [skips[2], skips[3]]
    assert strict_skips.offending(skips, []) == skips


@pytest.mark.parametrize(("value", "on"), [(None, False), ("", False), ("0", False),
                                           ("1", True), ("yes", True)])
def test_enabled_reads_the_variable(value: str | None, on: bool) -> None:
    env = {} if value is None else {strict_skips.ENV: value}
    assert strict_skips.enabled(env) is on
    plugin = strict_skips.plugin_from_env(env)
    assert (plugin is not None) is on


def test_a_typo_in_the_variable_is_an_error_not_off() -> None:
    with pytest.raises(AllowListError, match="expected 1 or 0"):
        strict_skips.enabled({strict_skips.ENV: "ture"})


# --- the plugin in a real pytest session ---------------------------------------------------

TESTS = """
import pytest

def test_runs():
    pass

def test_tool_missing():
    pytest.skip("chromium is not installed")

@pytest.mark.skipif(True, reason="needs root")
def test_marked():
    pass

@pytest.fixture
def built():
    pytest.skip("components are not built; run 'make components'")

def test_in_a_fixture(built):
    pass

@pytest.mark.xfail(reason="a known bug, not a skip")
def test_known_bug():
    assert False
"""


def _run(pytester: pytest.Pytester, allowed: str, tests: str = TESTS) -> pytest.RunResult:
    pytester.makepyfile(test_sample=tests)
    plugin = StrictSkips(strict_skips.parse_allowed(allowed, "allowed.txt"), "allowed.txt")
    return pytester.runpytest("-rs", "-p", "no:cacheprovider", plugins=[plugin])


def test_unlisted_skips_fail_the_run_and_are_named(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "needs root  # allowed for this test\n")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    result.stdout.fnmatch_lines([
        f"*{strict_skips.ENV}: skips that fail this run*",
        "SKIPPED test_sample.py::test_tool_missing: chromium is not installed",
        "SKIPPED test_sample.py::test_in_a_fixture: components are not built; run 'make components'",
        "2 skip(s) not allowed by allowed.txt*",
    ])
    assert "SKIPPED test_sample.py::test_marked" not in result.stdout.str()


def test_a_run_whose_skips_are_all_listed_passes(pytester: pytest.Pytester) -> None:
    allowed = "needs root  # a\nchromium is not installed  # b\ncomponents are not built*  # c\n"
    result = _run(pytester, allowed)
    assert result.ret == pytest.ExitCode.OK
    assert "skips that fail this run" not in result.stdout.str()


def test_a_module_skipped_at_collection_fails_the_run(pytester: pytest.Pytester) -> None:
    tests = ('import pytest\npytest.skip("needs a kernel module", allow_module_level=True)\n'
             "def test_never():\n    pass\n")
    result = _run(pytester, "", tests)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["SKIPPED test_sample.py: needs a kernel module"])


def test_a_failing_run_stays_failed(pytester: pytest.Pytester) -> None:
    tests = 'import pytest\ndef test_bad():\n    assert False\ndef test_skip():\n    pytest.skip("x")\n'
    result = _run(pytester, "", tests)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1, skipped=1)


def test_conftest_turns_it_on_from_the_environment(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's own conftest registers the plugin when the variable says so."""
    conftest = Path(__file__).resolve().parents[1] / "conftest.py"
    pytester.makeconftest(conftest.read_text())
    pytester.makepyfile(test_sample='import pytest\ndef test_skip():\n    pytest.skip("tool missing")\n')
    checkout = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", checkout)
    monkeypatch.setenv(strict_skips.ENV, "1")
    strict = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    strict.stdout.fnmatch_lines(["SKIPPED test_sample.py::test_skip: tool missing",
                                 "*not allowed by tests/allowed_skips.txt*"])
    monkeypatch.setenv(strict_skips.ENV, "0")
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider").ret == pytest.ExitCode.OK
    monkeypatch.setenv(strict_skips.ENV, "maybe")
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "expected 1 or 0" in bad.stderr.str()
