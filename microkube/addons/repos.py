"""``microkube addons repo add|remove|list|update``.

A repository is fetched (a copy of a local folder, or a shallow git clone)
into a staging folder and validated there; only a valid one replaces what
was installed, with a rename. So ``update`` to a revision that does not
validate leaves the old revision in place, untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from microkube.addons import repository
from microkube.addons.repository import CORE
from microkube.addons.schema import NAME_PATTERN
from microkube.addons.sources import RepoRegistry, RepoSource
from microkube.addons.state import AddonState
from microkube.errors import MicrokubeError, UsageError
from microkube.paths import Paths

_GIT_URL = re.compile(r"^(https?|git|ssh|file)://|^[\w.-]+@[\w.-]+:|\.git/?$")
Say = Callable[[str], None]


@dataclass(frozen=True)
class RepoRow:
    name: str
    source: str
    revision: str
    addons: int


def _check_name(name: str) -> None:
    if not re.match(NAME_PATTERN, name):
        raise UsageError(f"'{name}' is not a valid repository name (lower-case letters, digits, '-')")
    if name == CORE:
        raise UsageError("'core' is the repository that ships with microkube; pick another name")


def _kind(source: str) -> str:
    if Path(source).is_dir():
        return "path"
    if _GIT_URL.search(source):
        return "git"
    raise UsageError(f"'{source}' is neither a folder nor a git URL")


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and ".git" not in p.relative_to(folder).parts:
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _git(args: list[str], what: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
    except FileNotFoundError:
        raise MicrokubeError("git is not installed; it is needed for repositories given by URL") \
            from None
    except subprocess.TimeoutExpired:
        raise MicrokubeError(f"{what}: git did not finish within 300 s") from None
    if proc.returncode != 0:
        # git's first fatal line says what failed; its last is often advice cut mid-sentence
        # ("and the repository exists.").
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith(("fatal: ", "error: "))]
        line = (fatal or lines or ["failed"])[0]
        raise MicrokubeError(f"{what}: {line.removeprefix('fatal: ').removeprefix('error: ')}")
    return proc.stdout.strip()


def _fetch(source: str, kind: str, reference: str | None, dest: Path) -> str:
    """Put a copy of the repository at ``dest``; return its revision."""
    if kind == "path":
        if reference:
            raise UsageError("--reference applies to git repositories only")
        try:
            shutil.copytree(source, dest, symlinks=False, ignore=_copied_names)
        except shutil.Error as e:
            src, _, why = e.args[0][0]
            raise UsageError(f"{src}: cannot be copied ({why})") from None
        except OSError as e:
            raise UsageError(f"{e.filename or source}: cannot be copied ({e.strerror})") from None
        return _tree_hash(dest)
    args = ["clone", "--quiet", "--depth", "1"]
    if reference:
        args += ["--branch", reference]
    _git([*args, "--", source, str(dest)], f"cloning {source}")
    return _git(["rev-parse", "--short=12", "HEAD"], "reading the revision", cwd=dest)


def _copied_names(folder: str, names: list[str]) -> set[str]:
    """shutil.copytree's ``ignore``: what of ``names`` in ``folder`` a folder repository's
    copy leaves out (.git, __pycache__). A link is copied as the file it points to; a link
    to a folder, to nothing or to itself is refused (UsageError): followed, two links to
    '.' would copy 2^40 folders."""
    for name in names:
        link = Path(folder) / name
        if link.is_symlink() and not link.is_file():
            raise UsageError(f"{link}: a link to a folder, or to nothing; an addon repository "
                             "may link only to files")
    return {".git", "__pycache__"} & set(names)


def _staging(paths: Paths, name: str) -> Path:
    paths.addon_repos_dir.mkdir(parents=True, exist_ok=True)
    d = paths.addon_repos_dir / f".{name}.staging-{os.getpid()}"
    shutil.rmtree(d, ignore_errors=True)
    return d


def _fetch_valid(paths: Paths, name: str, source: str, kind: str,
                 reference: str | None) -> tuple[Path, str]:
    staging = _staging(paths, name)
    try:
        revision = _fetch(source, kind, reference, staging)
        try:
            repository.load(staging, name)
        except repository.RepositoryError as e:
            # Name the files where the user can fix them, not the staging copy (gone by now).
            raise repository.RepositoryError(str(e).replace(str(staging), source)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, revision


def add(paths: Paths, name: str, source: str, reference: str | None, force: bool, say: Say) -> None:
    _check_name(name)
    registry = RepoRegistry(paths)
    target = paths.addon_repos_dir / name
    if registry.get(name) is not None and not force:
        raise UsageError(f"repository '{name}' exists; use --force to replace it")
    kind = _kind(source)
    if kind == "path":
        source = str(Path(source).resolve())
    staging, revision = _fetch_valid(paths, name, source, kind, reference)
    _swap_in(staging, target)
    registry.put(RepoSource(name=name, source=source, kind=kind, reference=reference,
                            revision=revision, added=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime())))
    count = len(repository.load(target, name).addons)
    say(f"added repository {name} at revision {revision} ({count} addons)")


def _swap_in(staging: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        if old.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _enabled_from(paths: Paths, name: str) -> list[str]:
    state = AddonState.load(paths.addons_state_file)
    return sorted(ref.split("/", 1)[1] for ref in state.enabled if ref.split("/", 1)[0] == name)


def remove(paths: Paths, name: str, say: Say) -> None:
    registry = RepoRegistry(paths)
    if name == CORE:
        raise UsageError("the core repository ships with microkube and cannot be removed")
    if registry.get(name) is None:
        raise UsageError(f"no repository named '{name}'; see 'microkube addons repo list'")
    enabled = _enabled_from(paths, name)
    if enabled:
        raise UsageError(f"{name}'s addons {', '.join(enabled)} are enabled; disable them first")
    registry.remove(name)
    shutil.rmtree(paths.addon_repos_dir / name, ignore_errors=True)
    say(f"removed repository {name}")


def update(paths: Paths, name: str, say: Say) -> None:
    registry = RepoRegistry(paths)
    if name == CORE:
        raise UsageError("the core repository is updated with microkube itself")
    entry = registry.get(name)
    if entry is None:
        raise UsageError(f"no repository named '{name}'; see 'microkube addons repo list'")
    try:
        staging, revision = _fetch_valid(paths, name, entry.source, entry.kind, entry.reference)
    except MicrokubeError as e:
        raise MicrokubeError(f"update of {name} failed, it stays at revision {entry.revision}: "
                             f"{e}") from None
    if revision == entry.revision:
        shutil.rmtree(staging, ignore_errors=True)
        say(f"{name} is up to date (revision {revision})")
        return
    new_names = {a.name for a in repository.load(staging, name).addons}
    gone = [a for a in _enabled_from(paths, name) if a not in new_names]
    if gone:
        shutil.rmtree(staging, ignore_errors=True)
        raise MicrokubeError(f"update of {name} failed, it stays at revision {entry.revision}: "
                             f"the new revision drops enabled addons {', '.join(gone)}")
    _swap_in(staging, paths.addon_repos_dir / name)
    registry.put(RepoSource(name=entry.name, source=entry.source, kind=entry.kind,
                            reference=entry.reference, revision=revision, added=entry.added))
    say(f"updated {name}: {entry.revision} -> {revision}")


def rows(paths: Paths) -> list[RepoRow]:
    out = []
    with contextlib.suppress(MicrokubeError):
        core = repository.load(paths.core_addons_dir, CORE, validate=False)
        out.append(RepoRow(CORE, str(paths.core_addons_dir), "(ships with microkube)",
                           len(core.addons)))
    for e in RepoRegistry(paths).entries():
        try:
            count = len(repository.load(paths.addon_repos_dir / e.name, e.name,
                                        validate=False).addons)
        except MicrokubeError:
            count = 0
        src = e.source + (f"@{e.reference}" if e.reference else "")
        out.append(RepoRow(e.name, src, e.revision, count))
    return out
