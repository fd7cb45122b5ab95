"""components/components.yaml: load it and refuse anything malformed.

The manifest is the one place a component version is written. Everything
else (the go.mod files, the ldflags, the cache keys, `microkube version`)
is derived from what this module returns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from microkube import yamlerrors
from microkube.errors import UsageError
from microkube.paths import CHECKOUT

COMPONENTS_DIR = CHECKOUT / "components"
MANIFEST_PATH = COMPONENTS_DIR / "components.yaml"

# A fixed build date: Kubernetes prints it, and a fixed one keeps rebuilds byte-identical.
BUILD_DATE = "1970-01-01T00:00:00Z"

DESTS = ("bin", "cni")
PLACEHOLDERS = ("version", "semver", "major", "minor", "patch", "build_date")

_VERSION_RE = re.compile(
    r"^v(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?P<pre>-[0-9A-Za-z.-]+)?$"
)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_MODULE_RE = re.compile(r"^[a-z0-9.-]+\.[a-z]+(/[A-Za-z0-9._~-]+)*$")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")

_TOP_FIELDS = frozenset({"components"})
_FIELDS = frozenset({
    "module", "version", "why", "wrapper", "packages", "dest", "links", "tags", "cgo",
    "buildmode", "ldflags", "replace_staging", "version_command", "c_libs", "omit_packages",
})
_BINARY_FIELDS = frozenset({"package", "tags"})


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

    def expand(self, template: str) -> str:
        """Fill a template's {placeholders} from this component's version."""
        return template.format(**version_parts(self.version))

    @property
    def expanded_ldflags(self) -> tuple[str, ...]:
        return tuple(self.expand(f) for f in self.ldflags)

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
        }


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
    """Validate an already-parsed manifest document."""
    fname = path.name
    if not isinstance(data, Mapping):
        raise UsageError(f"{fname}: expected a mapping with a 'components' key")
    unknown = sorted(set(map(str, data)) - _TOP_FIELDS)
    if unknown:
        raise UsageError(f"{fname}: unknown key '{unknown[0]}'; expected only 'components'")
    raw = data.get("components")
    if not isinstance(raw, Mapping) or not raw:
        raise UsageError(f"{fname}: 'components' must be a non-empty mapping")
    comps = tuple(_component(fname, str(name), entry) for name, entry in raw.items())
    _check_unique_outputs(fname, comps)
    return Manifest(comps, path)


def _component(fname: str, name: str, entry: object) -> Component:
    def fail(msg: str) -> UsageError:
        return UsageError(f"{fname}: component '{name}': {msg}")

    if not _NAME_RE.match(name):
        raise fail("names are lower-case letters, digits and '-'")
    if not isinstance(entry, Mapping):
        raise fail("expected a mapping of fields")
    unknown = sorted(set(map(str, entry)) - _FIELDS)
    if unknown:
        raise fail(f"unknown field '{unknown[0]}'; known: {', '.join(sorted(_FIELDS))}")

    module = entry.get("module")
    if not module:
        raise fail("missing 'module' (the Go module path to build from)")
    if not isinstance(module, str) or not _MODULE_RE.match(module):
        raise fail(f"'module' {module!r} is not a Go module path")
    version = entry.get("version")
    if not version:
        raise fail("missing 'version'")
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise fail(f"malformed version {version!r}: must be vX.Y.Z (semver)")

    wrapper = _opt_str(fail, entry, "wrapper")
    binaries = _binaries(fail, entry.get("packages"), wrapper)
    dest = _opt_str(fail, entry, "dest") or "bin"
    if dest not in DESTS:
        raise fail(f"'dest' must be one of {', '.join(DESTS)}, not {dest!r}")

    names = {b.name for b in binaries}
    links = _str_map(fail, entry.get("links"), "links")
    for link, target in links:
        if target not in names:
            raise fail(f"link '{link}' points at '{target}', which this component does not build")

    cgo = entry.get("cgo", False)
    if not isinstance(cgo, bool):
        raise fail("'cgo' must be true or false")
    ldflags = _str_list(fail, entry.get("ldflags"), "ldflags")
    replace_staging = _opt_str(fail, entry, "replace_staging")
    for template in (*ldflags, *([replace_staging] if replace_staging else [])):
        for ph in _PLACEHOLDER_RE.findall(template):
            if ph not in PLACEHOLDERS:
                raise fail(f"unknown placeholder '{{{ph}}}'; known: {', '.join(PLACEHOLDERS)}")
    if replace_staging and not _VERSION_RE.match(replace_staging.format(**version_parts(version))):
        raise fail(f"'replace_staging' {replace_staging!r} does not give a vX.Y.Z version")

    omit = _str_list(fail, entry.get("omit_packages"), "omit_packages")
    for folder in omit:
        if folder.startswith("/") or ".." in folder.split("/") or folder in (".", ""):
            raise fail(f"'omit_packages' entry {folder!r} must be a folder inside the module")
    if omit and not _opt_str(fail, entry, "why"):
        raise fail("'omit_packages' changes upstream's build: say why in 'why'")

    version_command = _str_list(fail, entry.get("version_command"), "version_command")
    if version_command and version_command[0] not in names | {link for link, _ in links}:
        raise fail(f"'version_command' runs '{version_command[0]}', which this component "
                   "does not install")
    return Component(
        name=name,
        module=module,
        version=version,
        binaries=binaries,
        dest=dest,
        why=" ".join((_opt_str(fail, entry, "why") or "").split()),
        wrapper=wrapper,
        links=links,
        tags=_str_list(fail, entry.get("tags"), "tags"),
        cgo=cgo,
        buildmode=_opt_str(fail, entry, "buildmode"),
        ldflags=ldflags,
        replace_staging=replace_staging,
        version_command=version_command,
        c_libs=_str_list(fail, entry.get("c_libs"), "c_libs"),
        omit_packages=omit,
    )


def version_parts(version: str) -> dict[str, str]:
    """The values the {placeholders} of ldflags and replace_staging expand to."""
    m = _VERSION_RE.match(version)
    if m is None:
        raise UsageError(f"malformed version {version!r}: must be vX.Y.Z (semver)")
    return {
        "version": version,
        "semver": version[1:],
        "major": m["major"],
        "minor": m["minor"],
        "patch": m["patch"],
        "build_date": BUILD_DATE,
    }


def _binaries(fail: Any, raw: object, wrapper: str | None) -> tuple[Binary, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise fail("'packages' must map each binary name to its package path")
    out = []
    for name, value in raw.items():
        name = str(name)
        if not _NAME_RE.match(name):
            raise fail(f"binary name {name!r} is not a plain file name")
        tags: tuple[str, ...] = ()
        if isinstance(value, Mapping):
            unknown = sorted(set(map(str, value)) - _BINARY_FIELDS)
            if unknown:
                raise fail(f"binary '{name}': unknown field '{unknown[0]}'")
            tags = _str_list(fail, value.get("tags"), f"binary '{name}' tags")
            value = value.get("package")
        if not isinstance(value, str) or not value:
            raise fail(f"binary '{name}' needs a package path")
        if value == "." and not wrapper:
            raise fail(f"binary '{name}' builds '.', which needs a 'wrapper'")
        out.append(Binary(name, value, tags))
    return tuple(out)


def _opt_str(fail: Any, entry: Mapping[str, object], key: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise fail(f"'{key}' must be a non-empty string")
    return value


def _str_list(fail: Any, raw: object, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise fail(f"'{key}' must be a list of strings")
    return tuple(raw)


def _str_map(fail: Any, raw: object, key: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise fail(f"'{key}' must map names to names")
    return tuple((str(k), str(v)) for k, v in raw.items())


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
