"""Which addons are enabled, answered from files alone (``status`` must stay fast).

Addons told apart by a cluster object are taken from the state file that
enable/disable keep; those told apart by a daemon flag or a bundled program
are checked directly, since that costs a file read.
"""

from __future__ import annotations

from typing import Any

from microkube.addons.catalog import Catalog
from microkube.addons.repository import AddonSpec
from microkube.addons.state import AddonState
from microkube.errors import MicrokubeError
from microkube.paths import Paths


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


def status_lists(paths: Paths, values: dict[str, str]) -> dict[str, list[str]]:
    """{'enabled': [...], 'disabled': [...]}, each line 'dns  # (core) CoreDNS'.

    Repositories are read without schema validation (that is enable's job), and
    a broken one is left out rather than failing ``status``.
    """
    try:
        catalog = Catalog.load(paths, validate=False)
        state = AddonState.load(paths.addons_state_file)
    except (MicrokubeError, KeyError, TypeError, AttributeError):
        return {"enabled": [], "disabled": []}
    out: dict[str, list[str]] = {"enabled": [], "disabled": []}
    for row in addon_rows(paths, catalog, state, values):
        line = f"{row['name']:<20} # ({row['repository']}) {row['description']}"
        out["enabled" if row["enabled"] else "disabled"].append(line)
    return out
