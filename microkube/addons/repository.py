"""An addon repository: its ``addons.yaml`` index, validated, as typed objects.

Validation happens in two passes: the JSON schema (shape and spelling of
every field), then the rules a schema cannot say (unique names, aliases that
do not shadow an addon, requirements that exist, a folder with ``addon.py``
for each addon). Either way the error is one line naming the file and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microkube import yamlerrors
from microkube.addons.schema import validate_index
from microkube.errors import UsageError

INDEX = "addons.yaml"
HOOKS = "addon.py"
CORE = "core"


class RepositoryError(UsageError):
    """A malformed repository: the message names the file and the field."""


@dataclass(frozen=True)
class ArgumentSpec:
    name: str
    type: str
    help: str
    default: str | bool | int | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    positional: bool = False

    @property
    def is_flag(self) -> bool:
        return self.type == "flag"


@dataclass(frozen=True)
class EnabledWhen:
    """How to tell an addon is enabled (exactly one kind is set)."""

    resource: str | None = None  # kubectl spelling: 'deployment/coredns'
    namespace: str | None = None
    flag_daemon: str | None = None
    flag_name: str | None = None
    flag_contains: str | None = None
    bundled: str | None = None  # a program in $SNAP/bin

    @property
    def needs_cluster(self) -> bool:
        """True when only the API server can say (so status reads the state file)."""
        return self.resource is not None


@dataclass(frozen=True)
class AddonSpec:
    repository: str
    name: str
    description: str
    version: str
    folder: Path
    enabled_when: EnabledWhen
    architectures: tuple[str, ...]
    requires: tuple[str, ...] = ()  # fully qualified: 'core/hostpath-storage'
    aliases: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    arguments: tuple[ArgumentSpec, ...] = ()
    disable_arguments: tuple[ArgumentSpec, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.repository}/{self.name}"

    @property
    def hooks_file(self) -> Path:
        return self.folder / HOOKS


@dataclass(frozen=True)
class Repository:
    name: str
    path: Path
    description: str
    addons: tuple[AddonSpec, ...] = field(default=())

    def get(self, name: str) -> AddonSpec | None:
        for a in self.addons:
            if a.name == name or name in a.aliases:
                return a
        return None


def read_yaml(path: Path, cache_dir: Path | None = None) -> Any:
    """The YAML document in ``path`` (through a JSON copy in ``cache_dir``: yamlerrors.read).
    Raises RepositoryError when it is missing, unreadable or not YAML."""
    try:
        return yamlerrors.read(path, cache_dir)
    except FileNotFoundError:
        raise RepositoryError(f"{path}: missing; an addon repository needs an {INDEX}") from None
    except OSError as e:
        raise RepositoryError(f"{path}: cannot read ({e.strerror})") from None
    except yamlerrors.YamlError as e:
        raise RepositoryError(f"{path}: not valid YAML{e.where}") from None


def load(path: Path, name: str, validate: bool = True,
         cache_dir: Path | None = None) -> Repository:
    """Load the repository in folder ``path``; ``validate=False`` is for fast status reads,
    ``cache_dir`` keeps a JSON copy of its index (yamlerrors.read)."""
    index = path / INDEX
    doc = read_yaml(index, cache_dir)
    if validate:
        problem = validate_index(doc, str(index))
        if problem:
            raise RepositoryError(problem)
    repo = _build(doc, path, name)
    if validate:
        check(repo, index)
    return repo


def _arguments(raw: list[dict[str, Any]] | None) -> tuple[ArgumentSpec, ...]:
    return tuple(
        ArgumentSpec(
            name=a["name"], type=a["type"], help=a["help"], default=a.get("default"),
            choices=tuple(a.get("choices", ())), metavar=a.get("metavar"),
            positional=bool(a.get("positional", False)),
        )
        for a in raw or []
    )


def _build(doc: dict[str, Any], path: Path, name: str) -> Repository:
    addons = []
    for raw in doc.get("addons", []):
        ew = raw.get("enabled_when", {})
        flag = ew.get("flag") or {}
        when = EnabledWhen(
            resource=ew.get("resource"), namespace=ew.get("namespace"),
            flag_daemon=flag.get("daemon"), flag_name=flag.get("name"),
            flag_contains=flag.get("contains"), bundled=ew.get("bundled"),
        )
        requires = tuple(r if "/" in r else f"{name}/{r}" for r in raw.get("requires", []))
        addons.append(AddonSpec(
            repository=name, name=raw["name"], description=raw["description"],
            version=str(raw["version"]), folder=path / raw["name"], enabled_when=when,
            architectures=tuple(raw.get("architectures", ())), requires=requires,
            aliases=tuple(raw.get("aliases", ())), images=tuple(raw.get("images", ())),
            arguments=_arguments(raw.get("arguments")),
            disable_arguments=_arguments(raw.get("disable_arguments")),
        ))
    return Repository(name=name, path=path, description=str(doc.get("description", "")),
                      addons=tuple(addons))


def check(repo: Repository, index: Path) -> None:
    """The rules the schema cannot express; raises RepositoryError naming the field."""
    seen: dict[str, str] = {}
    for i, a in enumerate(repo.addons):
        where = f"{index}: addons[{i}] ({a.name})"
        for word in (a.name, *a.aliases):
            if word in seen:
                raise RepositoryError(f"{where}: '{word}' is already used by {seen[word]}")
            seen[word] = a.name
        if not a.folder.is_dir():
            raise RepositoryError(f"{where}: folder {a.folder} is missing")
        if not a.hooks_file.is_file():
            raise RepositoryError(f"{where}: {a.hooks_file} is missing (the enable/disable logic)")
        for key, specs in (("arguments", a.arguments), ("disable_arguments", a.disable_arguments)):
            _check_arguments(f"{where}.{key}", specs)
    names = {a.name for a in repo.addons}
    for i, a in enumerate(repo.addons):
        for req in a.requires:
            req_repo, req_name = req.split("/", 1)
            if req_repo == repo.name and req_name not in names:
                raise RepositoryError(f"{index}: addons[{i}] ({a.name}).requires: "
                                      f"'{req_name}' is not an addon of this repository")
            if req == a.ref:
                raise RepositoryError(f"{index}: addons[{i}] ({a.name}).requires: "
                                      "an addon cannot require itself")


def _check_arguments(where: str, specs: tuple[ArgumentSpec, ...]) -> None:
    seen = set()
    positional = [s.name for s in specs if s.positional]
    if len(positional) > 1:
        raise RepositoryError(f"{where}: only one argument may be positional "
                              f"({', '.join(positional)})")
    for j, s in enumerate(specs):
        at = f"{where}[{j}] ({s.name})"
        if s.name in seen or s.name == "help":
            raise RepositoryError(f"{at}.name: '{s.name}' is used twice or reserved")
        seen.add(s.name)
        if (s.type == "choice") != bool(s.choices):
            raise RepositoryError(f"{at}.choices: needed exactly when type is 'choice'")
        if s.default is not None:
            want: type = bool if s.type == "flag" else int if s.type == "int" else str
            if not isinstance(s.default, want) or (want is int and isinstance(s.default, bool)):
                raise RepositoryError(f"{at}.default: expected a {want.__name__} for type {s.type}")
            if s.choices and s.default not in s.choices:
                raise RepositoryError(f"{at}.default: {s.default!r} is not one of the choices")
        if s.positional and s.is_flag:
            raise RepositoryError(f"{at}.positional: a flag cannot be positional")
