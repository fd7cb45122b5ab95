"""Strict skips: in CI a skipped test fails the run, unless its reason is on a written list.

Every skip in the suite says a part is missing ("needs root", "not built", "tool
missing"). On a developer's machine that is fair; in CI, where ``make deps`` and
``make components`` put every part in place, a skip means a part went untested
while the run stayed green. ``.ci/run`` sets ``MICROKUBE_STRICT_SKIPS=1``;
tests/conftest.py then registers :class:`StrictSkips`, which turns a run with any
skip whose reason does not match tests/allowed_skips.txt into a failure and lists
the offending skips.

The allow-list has one skip per line: a reason pattern (``fnmatch``: ``*`` matches
anything), then `` # `` and why that skip may pass in CI. Blank lines and lines
starting with ``#`` are comments.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ENV = "MICROKUBE_STRICT_SKIPS"
ALLOW_FILE = Path(__file__).with_name("allowed_skips.txt")
_SEPARATOR = " # "


class AllowListError(ValueError):
    """The allow-list file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class AllowedSkip:
    """One allow-list entry: an ``fnmatch`` pattern on the skip reason, and why it may pass."""

    pattern: str
    why: str

    def matches(self, reason: str) -> bool:
        """True when ``reason`` (the text given to pytest.skip) matches this entry's pattern."""
        return fnmatch.fnmatchcase(reason, self.pattern)


@dataclass(frozen=True)
class Skip:
    """A skip that happened: the test (or collector) id and the reason given."""

    nodeid: str
    reason: str


def enabled(environ: Mapping[str, str]) -> bool:
    """True when ``environ`` asks for strict skips (``MICROKUBE_STRICT_SKIPS`` is 1/true/yes).

    Raises AllowListError for any other non-empty value, so a typo never turns it off.
    """
    value = environ.get(ENV, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise AllowListError(f"{ENV}={environ[ENV]!r}: expected 1 or 0")


def parse_allowed(text: str, source: str) -> list[AllowedSkip]:
    """The entries of an allow-list's ``text``; ``source`` names it in errors.

    Raises AllowListError naming ``source:line`` for a line without a reason
    pattern or without a why.
    """
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, why = line.partition(_SEPARATOR)
        if not sep or not why.strip():
            raise AllowListError(f"{source}:{number}: an allowed skip needs ' # ' and why it "
                                 f"is allowed: {line!r}")
        entries.append(AllowedSkip(pattern.strip(), why.strip()))
    return entries


def load_allowed(path: Path = ALLOW_FILE) -> list[AllowedSkip]:
    """The entries of the allow-list file at ``path``.

    Raises AllowListError when it cannot be read or is malformed.
    """
    try:
        text = path.read_text()
    except OSError as e:
        raise AllowListError(f"cannot read the allowed skips {path}: {e.strerror}") from None
    return parse_allowed(text, str(path))


def skip_of(report: pytest.TestReport | pytest.CollectReport) -> Skip | None:
    """The skip a pytest report records, or None when it records none (xfail is no skip)."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    # A skip's longrepr is (path, line, "Skipped: <reason>").
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    reason = text.removeprefix("Skipped: ")
    return Skip(report.nodeid, "" if reason == "Skipped" else reason)


def offending(skips: Sequence[Skip], allowed: Sequence[AllowedSkip]) -> list[Skip]:
    """Of ``skips``, the ones no entry of ``allowed`` matches, in their order."""
    return [s for s in skips if not any(a.matches(s.reason) for a in allowed)]


def plugin_from_env(environ: Mapping[str, str], path: Path = ALLOW_FILE) -> StrictSkips | None:
    """The plugin to register when ``environ`` asks for strict skips, with ``path``'s entries.

    None when strict skips are off. Raises AllowListError when the variable or the file is bad.
    """
    if not enabled(environ):
        return None
    return StrictSkips(load_allowed(path), f"{path.parent.name}/{path.name}")


class StrictSkips:
    """The pytest plugin: records skips; at the end, fails the run for each one not allowed.

    ``allowed`` are the allow-list's entries; ``source`` names the list in the message.
    """

    def __init__(self, allowed: Sequence[AllowedSkip], source: str) -> None:
        self.allowed = list(allowed)
        self.source = source
        self.skips: list[Skip] = []
        self.bad: list[Skip] = []

    def _record(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        skip = skip_of(report)
        if skip is not None:
            self.skips.append(skip)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.bad = offending(self.skips, self.allowed)
        if self.bad and session.exitstatus in (pytest.ExitCode.OK,
                                               pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.bad:
            return
        tr = terminalreporter
        tr.section(f"{ENV}: skips that fail this run", sep="=", red=True, bold=True)
        for s in self.bad:
            tr.line(f"SKIPPED {s.nodeid}: {s.reason}", red=True)
        tr.line(f"{len(self.bad)} skip(s) not allowed by {self.source}: in CI every part is "
                "installed and built, so a skip means a part went untested. Fix the cause, "
                "or add the reason to that file with why it may pass.", red=True)
