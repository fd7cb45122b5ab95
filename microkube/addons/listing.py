"""Which addons are enabled, answered from files alone (``status`` must stay fast).

Addons told apart by a cluster object are taken from the state file that
enable/disable keep; those told apart by a daemon flag or a bundled program
are checked directly, since that costs a file read.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """Every addon of every repository and whether it is enabled, in catalog order.

    Repositories are read without schema validation (that is enable's job), and
    a broken one is left out rather than failing ``status``.
    """
    try:
        catalog = Catalog.load(paths, validate=False)
        state = AddonState.load(paths.addons_state_file, paths.yaml_cache_dir)
    except (MicrokubeError, KeyError, TypeError, AttributeError):
        return []
    return [AddonStatus(name=str(r["name"]), repository=str(r["repository"]),
                        description=str(r["description"]), version=str(r["version"]),
                        enabled=bool(r["enabled"]))
            for r in addon_rows(paths, catalog, state, values)]
