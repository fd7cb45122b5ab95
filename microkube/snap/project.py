"""snapcraft.yaml, read once: the snap's metadata, apps and parts.

Only what microkube's snap uses is understood; anything else in an app is
refused with one line, so a typo cannot silently drop a setting from the
packed snap.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from microkube import yamlerrors
from microkube.errors import UsageError
from microkube.paths import CHECKOUT

SNAPCRAFT_YAML = CHECKOUT / "snapcraft.yaml"

# The app keys snap.yaml takes over unchanged (snapcraft's names).
APP_KEYS = (
    "command", "daemon", "restart-condition", "restart-delay", "stop-timeout",
    "start-timeout", "stop-mode", "stop-command", "post-stop-command", "reload-command",
    "after", "before", "refresh-mode", "install-mode", "environment", "aliases",
    "completer", "command-chain", "plugs", "slots", "timer", "watchdog-timeout",
)
REQUIRED = ("name", "summary", "description", "base", "confinement", "grade", "parts", "apps")


@dataclass(frozen=True)
class Project:
    name: str
    title: str | None
    summary: str
    description: str
    base: str
    confinement: str
    grade: str
    version: str | None  # None: adopted from a part (adopt-info)
    adopt_info: str | None
    platforms: tuple[str, ...]
    apps: dict[str, dict[str, Any]]
    parts: dict[str, dict[str, Any]]

    def daemon_apps(self) -> dict[str, dict[str, Any]]:
        """The long-running daemon apps (name -> app), not the timers."""
        return {n: a for n, a in self.apps.items() if a.get("daemon") and "timer" not in a}

    def timer_apps(self) -> dict[str, dict[str, Any]]:
        """The apps snapd runs on a timer (name -> app)."""
        return {n: a for n, a in self.apps.items() if "timer" in a}


def load(path: Path = SNAPCRAFT_YAML) -> Project:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: missing") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: not valid YAML{yamlerrors.where(e)}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping")
    return parse(raw, str(path))


def parse(raw: dict[str, Any], source: str = "snapcraft.yaml") -> Project:
    for key in REQUIRED:
        if key not in raw:
            raise UsageError(f"{source}: '{key}' is missing")
    if raw.get("version") is None and not raw.get("adopt-info"):
        raise UsageError(f"{source}: neither 'version' nor 'adopt-info' is set")
    if raw.get("adopt-info") and raw["adopt-info"] not in raw["parts"]:
        raise UsageError(f"{source}: adopt-info names '{raw['adopt-info']}', which is not a part")
    apps = raw["apps"]
    if not isinstance(apps, dict) or not apps:
        raise UsageError(f"{source}: 'apps' must be a non-empty mapping")
    for name, app in apps.items():
        if not isinstance(app, dict) or "command" not in app:
            raise UsageError(f"{source}: app '{name}' has no command")
        unknown = sorted(set(app) - set(APP_KEYS))
        if unknown:
            raise UsageError(f"{source}: app '{name}': unknown key '{unknown[0]}'")
        for dep in [*app.get("after", []), *app.get("before", [])]:
            if dep not in apps or not apps[dep].get("daemon"):
                raise UsageError(f"{source}: app '{name}' orders itself after '{dep}', "
                                 "which is not a daemon app")
    parts = raw["parts"]
    if not isinstance(parts, dict) or not parts:
        raise UsageError(f"{source}: 'parts' must be a non-empty mapping")
    platforms = tuple(raw.get("platforms") or {}) or ("amd64",)
    return Project(
        name=str(raw["name"]), title=raw.get("title"), summary=str(raw["summary"]),
        description=str(raw["description"]), base=str(raw["base"]),
        confinement=str(raw["confinement"]), grade=str(raw["grade"]),
        version=None if raw.get("version") is None else str(raw["version"]),
        adopt_info=raw.get("adopt-info"), platforms=platforms, apps=dict(apps),
        parts=dict(parts),
    )
