"""Which addons are enabled, answered from files alone (``status`` must stay fast).

Addons told apart by a cluster object are taken from the state file that
enable/disable keep; those told apart by a daemon flag or a bundled program
are checked directly, since that costs a file read.

``status`` takes the listing from a copy (:data:`Paths.addon_status_cache`) while
none of the files it came from changed: checking costs a few stats, where reading
the repositories costs importing the catalog's modules (~15 ms, issue 11).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass

from microkube.errors import MicrokubeError
from microkube.paths import Paths

TYPE_CHECKING = False  # the catalog's modules load only when the copy is stale
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from microkube.addons.catalog import Catalog
    from microkube.addons.repository import AddonSpec
    from microkube.addons.state import AddonState

# A file changed this recently (ns) may change again within its timestamp's granularity
# unseen: a listing read from it is not copied (git's "racily clean" rule).
RACY_NS = 2_000_000_000


def flag_contains(paths: Paths, values: dict[str, str], daemon: str, flag: str, word: str) -> bool:
    """True if ``--flag`` in the daemon's argument file lists ``word`` (comma-separated)."""
    from microkube.config import args

    value = args.flag_value(args.read(paths, daemon, values), flag) or ""
    return word in value.split(",")


def enabled_from_files(paths: Paths, addon: AddonSpec, state: AddonState,
                       values: dict[str, str]) -> bool:
    when = addon.enabled_when
    if when.bundled:
        return paths.binary(when.bundled).exists()
    if when.flag_daemon and when.flag_name and when.flag_contains:
        try:
            return flag_contains(paths, values, when.flag_daemon, when.flag_name,
                                 when.flag_contains)
        except MicrokubeError:
            return False
    return addon.ref in state.enabled


def addon_rows(paths: Paths, catalog: Catalog, state: AddonState,
               values: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"name": a.name, "repository": a.repository, "description": a.description,
         "version": a.version, "enabled": enabled_from_files(paths, a, state, values)}
        for a in catalog.addons()
    ]


@dataclass(frozen=True)
class AddonStatus:
    """One addon as ``status`` reports it."""

    name: str
    repository: str
    description: str
    version: str
    enabled: bool

    @property
    def status(self) -> str:
        """'enabled' or 'disabled'."""
        return "enabled" if self.enabled else "disabled"

    def record(self) -> dict[str, str]:
        """The addon as a record of strings: name, repository, description, version, status."""
        return {"name": self.name, "repository": self.repository,
                "description": self.description, "version": self.version,
                "status": self.status}


def addon_statuses(paths: Paths, values: dict[str, str]) -> list[AddonStatus]:
    """Every addon of every repository and whether it is enabled, in catalog order
    (``values``: the node's substitutions, which argument files are read with).

    Repositories are read without schema validation (that is enable's job), and
    a broken one is left out rather than failing ``status``. Answered from the copy in
    ``paths.addon_status_cache`` while every file the listing came from is unchanged
    (inode, size, mtime); else read, and copied when the folder is writable.
    """
    where = _where(paths, values)
    copied = _copied(paths.addon_status_cache, where)
    if copied is not None:
        return copied
    from microkube.addons.catalog import Catalog
    from microkube.addons.state import AddonState

    started = _now_ns()
    try:
        catalog = Catalog.load(paths, validate=False)
        state = AddonState.load(paths.addons_state_file, paths.yaml_cache_dir)
    except (MicrokubeError, KeyError, TypeError, AttributeError):
        return []
    found = [AddonStatus(name=str(r["name"]), repository=str(r["repository"]),
                         description=str(r["description"]), version=str(r["version"]),
                         enabled=bool(r["enabled"]))
             for r in addon_rows(paths, catalog, state, values)]
    _copy(paths.addon_status_cache, where, _inputs(paths, catalog), found, started)
    return found


def _now_ns() -> int:
    import time

    return time.time_ns()


def _where(paths: Paths, values: dict[str, str]) -> list[object]:
    """What a copy of the listing holds for besides its files: the folders it was read
    from (a refreshed snap has a new $SNAP) and the node's substitutions."""
    return [str(paths.core_addons_dir), str(paths.addon_repos_dir), str(paths.args_dir),
            str(paths.bin_dir), str(paths.addons_state_file), sorted(values.items())]


def _inputs(paths: Paths, catalog: Catalog) -> list[str]:
    """Every file the listing was read from, or whose being there it reports: the
    repositories' indexes and their record, the state file, the argument files of the
    flags and the bundled programs the addons are told apart by."""
    from microkube.addons.repository import INDEX
    from microkube.addons.sources import RepoRegistry

    registry = RepoRegistry(paths)
    files = [paths.core_addons_dir / INDEX, registry.file, paths.addons_state_file]
    files += [paths.addon_repos_dir / src.name / INDEX for src in registry.entries()]
    for addon in catalog.addons():
        when = addon.enabled_when
        if when.bundled:
            files.append(paths.binary(when.bundled))
        elif when.flag_daemon:
            files.append(paths.args_file(when.flag_daemon))
    return sorted({str(f) for f in files})


def _stat_key(path: str) -> list[int] | None:
    """What tells a file's versions apart (inode, size, mtime in ns); None when absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _copied(cache: Path, where: list[object]) -> list[AddonStatus] | None:
    """The listing in ``cache`` when it holds for ``where`` and none of its files
    changed; None otherwise (no copy, another one, a broken one)."""
    try:
        with open(cache, "rb") as f:
            doc = json.loads(f.read())
        if doc["where"] != json.loads(json.dumps(where)):
            return None
        if any(_stat_key(path) != key for path, key in doc["inputs"]):
            return None
        return [AddonStatus(str(n), str(r), str(d), str(v), bool(e))
                for n, r, d, v, e in doc["addons"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _copy(cache: Path, where: list[object], inputs: list[str],
          found: list[AddonStatus], started_ns: int) -> None:
    """Keep ``found`` in ``cache`` with the keys of its ``inputs``, unless one of them
    changed less than RACY_NS before the read began at ``started_ns`` (it might change
    again unseen). A folder status cannot write (a user's status) is left alone."""
    from microkube.fsutil import write_atomic

    keys = [(path, _stat_key(path)) for path in inputs]
    if any(key is not None and key[2] >= started_ns - RACY_NS for _, key in keys):
        return
    doc = {"where": where, "inputs": keys,
           "addons": [[a.name, a.repository, a.description, a.version, a.enabled]
                      for a in found]}
    with contextlib.suppress(OSError):
        write_atomic(cache, json.dumps(doc))
