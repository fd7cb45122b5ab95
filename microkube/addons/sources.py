"""The record of added repositories: where each came from and which revision it is at.

Kept as one small YAML file in the repositories folder
($SNAP_COMMON/addons/repositories.yaml), written atomically.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from microkube import yamlerrors
from microkube.errors import UsageError
from microkube.fsutil import write_atomic
from microkube.paths import Paths

RECORD = "repositories.yaml"


@dataclass(frozen=True)
class RepoSource:
    name: str
    source: str  # a local folder or a git URL
    kind: str  # "path" or "git"
    reference: str | None  # git branch or tag; None = the default branch
    revision: str  # git commit, or a content hash of a copied folder
    added: str  # ISO time


class RepoRegistry:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    @property
    def file(self) -> Path:
        return self.paths.addon_repos_dir / RECORD

    def entries(self) -> list[RepoSource]:
        try:
            doc = yamlerrors.read(self.file, self.paths.yaml_cache_dir)
        except FileNotFoundError:
            return []
        except (OSError, yamlerrors.YamlError) as e:
            why = e.strerror if isinstance(e, OSError) else e  # the path is said once
            raise UsageError(f"{self.file}: cannot read the repository record ({why})") from None
        items = (doc or {}).get("repositories", []) if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise UsageError(f"{self.file}: 'repositories' must be a list")
        try:
            return [RepoSource(**item) for item in items]
        except TypeError as e:
            raise UsageError(f"{self.file}: malformed entry ({e})") from None

    def get(self, name: str) -> RepoSource | None:
        return next((e for e in self.entries() if e.name == name), None)

    def save(self, entries: list[RepoSource]) -> None:
        doc = {"repositories": [asdict(e) for e in entries]}
        import yaml  # here: reading goes through yamlerrors

        write_atomic(self.file, yaml.safe_dump(doc, sort_keys=False))

    def put(self, entry: RepoSource) -> None:
        entries = [e for e in self.entries() if e.name != entry.name]
        # Keep the order of addition; an update keeps its place.
        old = [e.name for e in self.entries()]
        entries.append(entry)
        entries.sort(key=lambda e: old.index(e.name) if e.name in old else len(old))
        self.save(entries)

    def remove(self, name: str) -> None:
        self.save([e for e in self.entries() if e.name != name])
