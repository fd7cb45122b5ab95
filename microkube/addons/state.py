"""Which addons are enabled, with what, and which objects each one made.

One YAML file ($SNAP_DATA/var/addons.yaml), written atomically after every
enable and disable. ``status`` reads it instead of asking the API server, so
it stays fast; ``disable`` reads the object list so it removes exactly what
``enable`` made, even if the templates changed since.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from microkube import yamlerrors
from microkube.errors import UsageError
from microkube.fsutil import write_atomic
from microkube.kube.objects import ObjectRef


@dataclass
class EnabledAddon:
    version: str
    arguments: dict[str, Any] = field(default_factory=dict)
    objects: list[ObjectRef] = field(default_factory=list)
    enabled_at: str = ""


@dataclass
class AddonState:
    path: Path
    enabled: dict[str, EnabledAddon] = field(default_factory=dict)  # by 'repo/name'

    @classmethod
    def load(cls, path: Path, cache_dir: Path | None = None) -> AddonState:
        """The state in ``path`` (through a JSON copy in ``cache_dir``: yamlerrors.read);
        empty when there is none. Raises UsageError for a file that is unreadable or broken."""
        try:
            doc = yamlerrors.read(path, cache_dir)
        except FileNotFoundError:
            return cls(path)
        except (OSError, yamlerrors.YamlError) as e:
            why = e.strerror if isinstance(e, OSError) else e  # the path is said once
            raise UsageError(f"{path}: cannot read the addon state ({why})") from None
        state = cls(path)
        raw = (doc or {}).get("enabled", {}) if isinstance(doc, dict) else None
        if not isinstance(raw, dict):
            raise UsageError(f"{path}: 'enabled' must be a mapping")
        for ref, item in raw.items():
            try:
                objects = [ObjectRef(**o) for o in item.get("objects", [])]
                state.enabled[str(ref)] = EnabledAddon(
                    version=str(item["version"]), arguments=dict(item.get("arguments") or {}),
                    objects=objects, enabled_at=str(item.get("enabled_at", "")))
            except (AttributeError, KeyError, TypeError) as e:
                raise UsageError(f"{path}: entry '{ref}' is malformed ({e})") from None
        return state

    def save(self) -> None:
        doc = {"enabled": {ref: asdict(e) for ref, e in sorted(self.enabled.items())}}
        header = "# Addons enabled on this node; written by 'microkube enable/disable'.\n"
        import yaml  # here: reading goes through yamlerrors

        write_atomic(self.path, header + yaml.safe_dump(doc, sort_keys=False))

    def mark_enabled(self, ref: str, version: str, arguments: dict[str, Any],
                     objects: list[ObjectRef]) -> None:
        self.enabled[ref] = EnabledAddon(
            version=version, arguments=arguments, objects=objects,
            enabled_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.save()

    def mark_disabled(self, ref: str) -> None:
        if self.enabled.pop(ref, None) is not None:
            self.save()
