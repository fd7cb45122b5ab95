"""Every repository a node knows, and finding addons in them.

The core repository comes first; added repositories follow in the order
they were added. A bare name must be unique across repositories (or name
its repository, 'core/dns'); an unknown one gets a "did you mean".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from microkube.addons import repository
from microkube.addons.repository import CORE, AddonSpec, Repository
from microkube.addons.sources import RepoRegistry
from microkube.errors import UsageError
from microkube.paths import Paths


@dataclass(frozen=True)
class Catalog:
    repositories: tuple[Repository, ...]

    @classmethod
    def load(cls, paths: Paths, validate: bool = True) -> Catalog:
        """Core first, then added repositories; ``validate=False`` (status) skips broken ones."""
        cache = paths.yaml_cache_dir
        repos = [repository.load(paths.core_addons_dir, CORE, validate, cache)]
        for src in RepoRegistry(paths).entries():
            try:
                repos.append(repository.load(paths.addon_repos_dir / src.name, src.name, validate,
                                             cache))
            except (UsageError, KeyError, TypeError, AttributeError):
                if validate:
                    raise
        return cls(tuple(repos))

    def addons(self) -> list[AddonSpec]:
        return [a for r in self.repositories for a in r.addons]

    def repo(self, name: str) -> Repository | None:
        return next((r for r in self.repositories if r.name == name), None)

    def find(self, word: str) -> AddonSpec:
        """The addon ``word`` names ('dns', 'storage', 'core/dns'); one clear line if none."""
        if "/" in word:
            repo_name, name = word.split("/", 1)
            repo = self.repo(repo_name)
            if repo is None:
                known = ", ".join(r.name for r in self.repositories)
                raise UsageError(f"unknown addon repository '{repo_name}' in '{word}'; "
                                 f"repositories: {known}")
            found = repo.get(name)
            if found is None:
                raise UsageError(f"{repo_name} has no addon '{name}'"
                                 + _hint(name, _words(repo.addons), prefix=f"{repo_name}/"))
            return found
        hits = [a for r in self.repositories if (a := r.get(word)) is not None]
        if not hits:
            raise UsageError(f"unknown addon '{word}'" + _hint(word, _words(self.addons())))
        if len(hits) > 1:
            choices = " or ".join(h.ref for h in hits)
            raise UsageError(f"'{word}' is in more than one repository; say {choices}")
        return hits[0]

    def with_requirements(self, wanted: Iterable[AddonSpec]) -> list[AddonSpec]:
        """``wanted`` plus what each requires, requirements first, each once."""
        order: list[AddonSpec] = []
        visiting: list[str] = []

        def visit(addon: AddonSpec) -> None:
            if addon in order:
                return
            if addon.ref in visiting:
                cycle = " -> ".join([*visiting[visiting.index(addon.ref):], addon.ref])
                raise UsageError(f"addon requirements form a cycle: {cycle}")
            visiting.append(addon.ref)
            for req in addon.requires:
                visit(self.find(req))
            visiting.pop()
            order.append(addon)

        for addon in wanted:
            visit(addon)
        return order

    def dependents(self, addon: AddonSpec) -> list[AddonSpec]:
        """Addons that require ``addon``."""
        return [a for a in self.addons() if addon.ref in a.requires]


def _words(addons: Iterable[AddonSpec]) -> list[str]:
    return [w for a in addons for w in (a.name, *a.aliases)]


def _hint(word: str, candidates: list[str], prefix: str = "") -> str:
    import difflib  # here: only a misspelt name needs it

    near = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not near:
        # A prefix ('metrics' for 'metrics-server') is a likely slip too.
        near = [c for c in candidates if c.startswith(word) or word.startswith(c)][:1]
    return f"; did you mean '{prefix}{near[0]}'?" if near else "; see 'microkube status' for the list"
