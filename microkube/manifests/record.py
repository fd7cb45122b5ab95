"""What the deployer remembers between passes and restarts, and what it reports.

* the state (``Paths.manifests_state_file``): per file, the digest it was last
  applied with and every kind it ever created, so pruning and removal know which
  kinds to select by label, even after a restart;
* the report (``Paths.manifests_report_file``): per file, "applied" or "failed"
  with a one-line message; ``status`` shows it.

Both are JSON written atomically; an unreadable one counts as empty.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from microkube.fsutil import write_atomic

APPLIED = "applied"
FAILED = "failed"


@dataclass
class UnitState:
    """A file as last applied: its ``digest`` ("" until it applied once) and every
    (apiVersion, kind) it has created."""

    digest: str = ""
    kinds: set[tuple[str, str]] = field(default_factory=set)


def load_state(path: Path) -> dict[str, UnitState]:
    """The state by file name; empty when there is none (or it cannot be read)."""
    doc = _read(path)
    units = doc.get("units") if isinstance(doc, dict) else None
    out: dict[str, UnitState] = {}
    for name, u in (units or {}).items():
        try:
            out[str(name)] = UnitState(str(u.get("digest", "")),
                                       {(str(a), str(k)) for a, k in u.get("kinds", [])})
        except (AttributeError, TypeError, ValueError):
            continue
    return out


def save_state(path: Path, units: dict[str, UnitState]) -> None:
    """Write the state atomically."""
    doc = {"units": {name: {"digest": u.digest, "kinds": sorted(u.kinds)}
                     for name, u in sorted(units.items())}}
    write_atomic(path, json.dumps(doc, indent=1) + "\n")


@dataclass
class Outcome:
    """How a file's last pass went: ``state`` is APPLIED or FAILED; ``since`` is when
    that outcome began (seconds since the epoch)."""

    state: str
    message: str
    since: float


@dataclass
class Report:
    """The deployer's outcome per file name, and the folder it watches."""

    folder: str
    files: dict[str, Outcome] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"folder": self.folder,
                "files": {n: asdict(o) for n, o in sorted(self.files.items())}}


def save_report(path: Path, report: Report) -> None:
    write_atomic(path, json.dumps(report.as_dict(), indent=1) + "\n")


def load_report(path: Path) -> Report | None:
    """The last report written, or None when there is none (the deployer does not run,
    or has not finished its first pass)."""
    doc = _read(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        return None
    report = Report(str(doc.get("folder", "")))
    for name, o in doc["files"].items():
        try:
            report.files[str(name)] = Outcome(str(o["state"]), str(o["message"]), float(o["since"]))
        except (KeyError, TypeError, ValueError):
            continue
    return report


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
