"""components/components.yaml: load it and refuse anything malformed.

The manifest is the one place a component version is written. Everything
else (the go.mod files, the ldflags, the cache keys, `microkube version`)
is derived from what this module returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from microkube import yamlerrors
from microkube.components.schema import VERSION_PATTERN, validate_manifest
from microkube.errors import UsageError
from microkube.paths import CHECKOUT

COMPONENTS_DIR = CHECKOUT / "components"
MANIFEST_PATH = COMPONENTS_DIR / "components.yaml"

# The module path prefix of our own modules: a component whose module starts with it is
# built from its wrapper folder alone (its go.mod is ours; nothing is downloaded).
LOCAL_MODULE_PREFIX = "microkube.local/"

# A fixed build date: Kubernetes prints it, and a fixed one keeps rebuilds byte-identical.
BUILD_DATE = "1970-01-01T00:00:00Z"

PLACEHOLDERS = ("version", "semver", "major", "minor", "patch", "build_date")

_VERSION_RE = re.compile(VERSION_PATTERN)  # groups: major, minor, patch, pre-release
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")



@dataclass(frozen=True)
class Binary:
    """One executable a component builds."""

    name: str
    package: str  # import path, or "." for the wrapper's own main package
    tags: tuple[str, ...] = ()  # extra build tags for this binary only


@dataclass(frozen=True)
class Component:
    """One pinned upstream component, as the manifest describes it."""

    name: str
    module: str
    version: str
    binaries: tuple[Binary, ...]
    dest: str = "bin"
    why: str = ""
    wrapper: str | None = None
    links: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()
    cgo: bool = False
    buildmode: str | None = None
    ldflags: tuple[str, ...] = ()
    replace_staging: str | None = None
    version_command: tuple[str, ...] = ()
    c_libs: tuple[str, ...] = ()
    omit_packages: tuple[str, ...] = ()  # folders of the module built as empty packages
    # More pinned modules the wrapper imports packages of: (module, version) pairs.
    requires: tuple[tuple[str, str], ...] = ()
    # Parts built from ``requires`` modules that `microkube version` lists beside the
    # component: (part name, module, version command). Not part of the build recipe.
    part_versions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    # Folders under components/ whose Go files the build copies into the wrapper's main.
    shared: tuple[str, ...] = ()

    def expand(self, template: str) -> str:
        """Fill a template's {placeholders} from this component's version."""
        return template.format(**version_parts(self.version))

    @property
    def expanded_ldflags(self) -> tuple[str, ...]:
        return tuple(self.expand(f) for f in self.ldflags)

    def part_pins(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """Each of ``part_versions`` as (part name, the pinned version of its module, its
        version command): what the install record keeps and `microkube version` asks."""
        pinned = dict(self.requires)
        return [(part, pinned[module], command) for part, module, command in self.part_versions]

    @property
    def is_local(self) -> bool:
        """True for one of our own modules (components/<wrapper>/go.mod), not an upstream pin."""
        return self.module.startswith(LOCAL_MODULE_PREFIX)

    @property
    def staging_version(self) -> str | None:
        return self.expand(self.replace_staging) if self.replace_staging else None

    def build_recipe(self) -> dict[str, Any]:
        """What shapes the binaries: the input of the cache key.

        ``why`` and ``version_command`` are left out: rewording a reason or
        changing how a version is read must not force a rebuild. A field added
        later should appear here only when set, so existing keys stay valid.
        """
        return {
            "name": self.name,
            "module": self.module,
            "version": self.version,
            "wrapper": self.wrapper,
            "binaries": [[b.name, b.package, list(b.tags)] for b in self.binaries],
            "tags": list(self.tags),
            "cgo": self.cgo,
            "buildmode": self.buildmode,
            "ldflags": list(self.expanded_ldflags),
            "replace_staging": self.staging_version,
            "c_libs": list(self.c_libs),
            "omit_packages": list(self.omit_packages),
        } | ({"requires": [list(r) for r in self.requires]} if self.requires else {}) | (
            {"shared": list(self.shared)} if self.shared else {})


@dataclass(frozen=True)
class Manifest:
    components: tuple[Component, ...]
    path: Path

    def names(self) -> list[str]:
        return [c.name for c in self.components]

    def get(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise UsageError(
            f"unknown component '{name}'; one of: {', '.join(self.names())}"
        )


def load(path: Path = MANIFEST_PATH) -> Manifest:
    """Read and validate the manifest; any problem is one UsageError line."""
    try:
        text = path.read_text()
    except OSError as e:
        raise UsageError(f"{path.name}: cannot read {path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f"{path.name}: not valid YAML{yamlerrors.where(e)}") from e
    return parse(data, path)


def parse(data: object, path: Path = MANIFEST_PATH) -> Manifest:
    """Validate an already-parsed manifest document: first its shape against the
    schema (components/schema.py), then what a schema cannot see."""
    fname = path.name
    problem = validate_manifest(data, fname)
    if problem:
        raise UsageError(problem)
    assert isinstance(data, Mapping)
    comps = tuple(_component(fname, str(name), entry)
                  for name, entry in data["components"].items())
    _check_unique_outputs(fname, comps)
    return Manifest(comps, path)


def _component(fname: str, name: str, entry: Mapping[str, Any]) -> Component:
    """A schema-valid entry, checked for what only makes sense across its fields."""
    def fail(msg: str) -> UsageError:
        return UsageError(f"{fname}: component '{name}': {msg}")

    version: str = entry["version"]
    wrapper: str | None = entry.get("wrapper")
    binaries = _binaries(fail, entry["packages"], wrapper)
    names = {b.name for b in binaries}
    links = tuple((str(k), str(v)) for k, v in (entry.get("links") or {}).items())
    for link, target in links:
        if target not in names:
            raise fail(f"link '{link}' points at '{target}', which this component does not build")

    ldflags = tuple(entry.get("ldflags") or ())
    replace_staging: str | None = entry.get("replace_staging")
    for template in (*ldflags, *([replace_staging] if replace_staging else [])):
        for ph in _PLACEHOLDER_RE.findall(template):
            if ph not in PLACEHOLDERS:
                raise fail(f"unknown placeholder '{{{ph}}}'; known: {', '.join(PLACEHOLDERS)}")
    if replace_staging and not _VERSION_RE.match(replace_staging.format(**version_parts(version))):
        raise fail(f"'replace_staging' {replace_staging!r} does not give a vX.Y.Z version")

    omit = tuple(entry.get("omit_packages") or ())
    for folder in omit:
        if folder.startswith("/") or ".." in folder.split("/") or folder in (".", ""):
            raise fail(f"'omit_packages' entry {folder!r} must be a folder inside the module")

    requires = tuple((str(m), str(v)) for m, v in (entry.get("requires") or {}).items())
    if requires and not wrapper:
        raise fail("'requires' needs a 'wrapper': only our own main imports the extra modules")

    part_versions = tuple((str(part), str(spec["module"]), tuple(spec["version_command"]))
                          for part, spec in (entry.get("part_versions") or {}).items())
    for part, part_module, _ in part_versions:
        if part_module not in dict(requires):
            raise fail(f"'part_versions' entry '{part}': module '{part_module}' is not in "
                       "'requires'")

    shared = tuple(entry.get("shared") or ())
    if shared and not wrapper:
        raise fail("'shared' needs a 'wrapper': the shared Go files join the wrapper's main")
    for folder in shared:
        if folder == wrapper:
            raise fail(f"'shared' folder '{folder}' is the wrapper itself")

    module: str = entry["module"]
    if module.startswith(LOCAL_MODULE_PREFIX) and not wrapper:
        raise fail(f"'{module}' is one of our own modules: it needs a 'wrapper' folder "
                   "holding its go.mod")

    version_command = tuple(entry.get("version_command") or ())
    if version_command and version_command[0] not in names | {link for link, _ in links}:
        raise fail(f"'version_command' runs '{version_command[0]}', which this component "
                   "does not install")
    for part, _, command in part_versions:
        if command[0] not in names | {link for link, _ in links}:
            raise fail(f"'part_versions' entry '{part}' runs '{command[0]}', which this "
                       "component does not install")
    return Component(
        name=name,
        module=module,
        version=version,
        binaries=binaries,
        dest=entry.get("dest", "bin"),
        why=" ".join((entry.get("why") or "").split()),
        wrapper=wrapper,
        links=links,
        tags=tuple(entry.get("tags") or ()),
        cgo=entry.get("cgo", False),
        buildmode=entry.get("buildmode"),
        ldflags=ldflags,
        replace_staging=replace_staging,
        version_command=version_command,
        c_libs=tuple(entry.get("c_libs") or ()),
        omit_packages=omit,
        requires=requires,
        part_versions=part_versions,
        shared=shared,
    )


def version_parts(version: str) -> dict[str, str]:
    """The values the {placeholders} of ldflags and replace_staging expand to."""
    m = _VERSION_RE.match(version)
    if m is None:
        raise UsageError(f"malformed version {version!r}: must be vX.Y.Z (semver)")
    return {
        "version": version,
        "semver": version[1:],
        "major": m[1],
        "minor": m[2],
        "patch": m[3],
        "build_date": BUILD_DATE,
    }


def _binaries(fail: Callable[[str], UsageError], raw: Mapping[str, Any],
              wrapper: str | None) -> tuple[Binary, ...]:
    out = []
    for name, value in raw.items():
        package, tags = (value, ()) if isinstance(value, str) else (
            value["package"], tuple(value.get("tags") or ()))
        if package == "." and not wrapper:
            raise fail(f"binary '{name}' builds '.', which needs a 'wrapper'")
        out.append(Binary(str(name), package, tags))
    return tuple(out)


def _check_unique_outputs(fname: str, comps: tuple[Component, ...]) -> None:
    """Two components must never install the same file."""
    seen: dict[tuple[str, str], str] = {}
    for c in comps:
        for out in [b.name for b in c.binaries] + [link for link, _ in c.links]:
            other = seen.setdefault((c.dest, out), c.name)
            if other != c.name:
                raise UsageError(
                    f"{fname}: component '{c.name}': '{out}' is also installed by '{other}'"
                )
