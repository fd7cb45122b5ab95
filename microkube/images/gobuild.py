"""Go binaries for addon images that components.yaml cannot describe.

Two cases:

* a pinned upstream module whose own go.mod carries ``replace``/``exclude``
  directives its build depends on (Traefik: forks of two libraries, and an
  exclude that avoids an ambiguous import). Those directives only act in the
  main module, so the work module here repeats them: the binary is then the
  one upstream's own build makes. A local (``=> ./path``) replace cannot be
  repeated (the proxy's zip lacks that folder) and is refused with a clear line.
* a module of ours in components/<name>/ (the dashboard), standard library only.

Binaries are cached under <cache>/addon-binaries/<name>-<key>/
(Paths.addon_binaries_cache), keyed by what shapes them, and built with the
Go toolchain the components use (microkube.gotoolchain): the same lock, so
only one Go build runs at a time, and the same proxy-only environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from microkube.errors import MicrokubeError
from microkube.fsutil import write_atomic
from microkube.gotoolchain import GoCommandError, build_args, build_lock, toolchain
from microkube.paths import Paths

# Bump when this module changes how binaries are made (editing it otherwise keeps the cache).
RECIPE_VERSION = 1
_REPLACE_LINE = re.compile(r"^\s*(\S+)(\s+\S+)?\s*=>\s*(\S+)(\s+\S+)?\s*$")
Echo = Callable[[str], None]


@dataclass(frozen=True)
class GoBinary:
    """One binary: from a pinned upstream module, or from a folder of ours."""

    name: str
    package: str  # import path, or "." for our own folder's main package
    module: str | None = None  # upstream module path (with version)
    version: str | None = None
    source_dir: Path | None = None  # our own module (components/<name>)
    ldflags: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    extra_key: dict[str, str] = field(default_factory=dict)

    def key_inputs(self, go_version: str) -> bytes:
        doc: dict[str, object] = {
            "name": self.name, "package": self.package, "module": self.module,
            "version": self.version, "ldflags": list(self.ldflags), "tags": list(self.tags),
            "go": go_version, "recipe": RECIPE_VERSION,
            **self.extra_key,
        }
        if self.source_dir is not None:
            doc["sources"] = {
                str(p.relative_to(self.source_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.source_dir.rglob("*")) if p.is_file()
            }
        return json.dumps(doc, sort_keys=True).encode()


def cached_binary(binary: GoBinary, paths: Paths | None = None) -> Path:
    """Where the cached binary is (it may not exist yet); ``paths`` names the cache
    (default: from the environment)."""
    paths = paths or Paths.from_env()
    key = hashlib.sha256(binary.key_inputs(toolchain().version)).hexdigest()[:12]
    return paths.addon_binaries_cache / f"{binary.name}-{key}" / binary.name


def build(binary: GoBinary, echo: Echo = print, paths: Paths | None = None) -> Path:
    """The binary's path, from the cache or built now. Raises MicrokubeError when Go
    is missing or the build fails (the line names the log)."""
    paths = paths or Paths.from_env()
    out = cached_binary(binary, paths)
    if out.exists():
        return out
    with build_lock(paths.go_build_lock, echo):
        if out.exists():
            return out
        work = paths.go_work_dir / f"addon-{binary.name}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        log = work / "build.log"
        echo(f"go build {binary.name}: building (log: {log}) ...")
        started = time.monotonic()
        staging = out.parent.with_name(out.parent.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            if binary.source_dir is not None:
                _build_ours(binary, work, staging / binary.name, log)
            else:
                _build_upstream(binary, work, staging / binary.name, log)
            os.replace(staging, out.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        echo(f"go build {binary.name}: built in {time.monotonic() - started:.0f} s")
    return out


def _go(args: list[str], cwd: Path, log: Path, capture: bool = False) -> str:
    try:
        return toolchain().run(args, cwd, log, capture=capture)
    except GoCommandError as e:
        last = e.tail[-1] if e.tail else f"exit status {e.returncode}"
        raise MicrokubeError(f"'go {args[0]}' failed in {cwd}: {last} (log: {log})") from None


def _build_args(binary: GoBinary, out: Path) -> list[str]:
    return build_args(binary.package, out, tags=binary.tags, ldflags=binary.ldflags)


def _build_ours(binary: GoBinary, work: Path, out: Path, log: Path) -> None:
    assert binary.source_dir is not None
    shutil.copytree(binary.source_dir, work / "src")
    _go(_build_args(binary, out), work / "src", log)


def _build_upstream(binary: GoBinary, work: Path, out: Path, log: Path) -> None:
    assert binary.module and binary.version
    info = json.loads(_go(["mod", "download", "-json", f"{binary.module}@{binary.version}"],
                          work, log, capture=True) or "{}")
    if info.get("Error") or not info.get("GoMod"):
        raise MicrokubeError(f"{binary.module}@{binary.version}: {info.get('Error', 'not found')}")
    upstream = Path(info["GoMod"]).read_text()
    write_atomic(work / "go.mod", work_gomod(binary.name, binary.module, binary.version, upstream))
    _go(["get", f"{binary.package}@{binary.version}"], work, log)
    _go(_build_args(binary, out), work, log)


def work_gomod(name: str, module: str, version: str, upstream: str) -> str:
    """A main module requiring ``module`` with upstream's go line, replaces and excludes."""
    text = re.sub(r"//[^\n]*", "", upstream)
    go_line = re.search(r"^go\s+(\S+)\s*$", text, re.M)
    lines = [f"// Generated by microkube.images.gobuild for {name}; do not edit.",
             f"module microkube.local/{name}", "", f"go {go_line.group(1) if go_line else '1.22'}",
             "", f"require {module} {version}", ""]
    for directive in ("replace", "exclude"):
        for entry in directives(text, directive):
            if directive == "replace":
                m = _REPLACE_LINE.match(entry)
                if m and m.group(3).startswith(("./", "../", "/")):
                    raise MicrokubeError(
                        f"{module}@{version} replaces {m.group(1)} with a local folder "
                        f"({m.group(3)}), which the module proxy does not serve")
            lines.append(f"{directive} {entry}")
    return "\n".join(lines) + "\n"


def directives(gomod: str, keyword: str) -> list[str]:
    """The entries of every ``keyword`` directive, single-line and block forms."""
    out: list[str] = []
    block = False
    for raw in gomod.splitlines():
        line = raw.strip()
        if block:
            if line == ")":
                block = False
            elif line:
                out.append(line)
        elif line.startswith(keyword + " (") or line == keyword + "(":
            block = True
        elif line.startswith(keyword + " "):
            out.append(line[len(keyword) + 1:].strip())
    return out
