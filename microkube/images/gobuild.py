"""Go binaries for addon images that components.yaml cannot describe.

Two cases:

* a pinned upstream module whose own go.mod carries ``replace``/``exclude``
  directives its build depends on (Traefik: forks of two libraries, and an
  exclude that avoids an ambiguous import). Those directives only act in the
  main module, so the work module here repeats them: the binary is then the
  one upstream's own build makes. A local (``=> ./path``) replace cannot be
  repeated (the proxy's zip lacks that folder) and is refused with a clear line.
* a module of ours in components/<name>/ (the dashboard), standard library only.

Binaries are cached under ~/.cache/microkube/addon-binaries/<name>-<key>/,
keyed by what shapes them, and built under the component builder's lock so
that only one Go build runs at a time on the machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from microkube.errors import MicrokubeError
from microkube.fsutil import write_atomic

# Bump when this module changes how binaries are made (editing it otherwise keeps the cache).
RECIPE_VERSION = 1
_REPLACE_LINE = re.compile(r"^\s*(\S+)(\s+\S+)?\s*=>\s*(\S+)(\s+\S+)?\s*$")
Echo = Callable[[str], None]


def cache_root() -> Path:
    from microkube.components.cache import cache_root as components_cache_root

    return components_cache_root()


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


def go_version() -> str:
    try:
        out = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True,
                             check=False)
    except FileNotFoundError:
        raise MicrokubeError("the Go toolchain ('go') is not on PATH; install Go 1.26 or newer") \
            from None
    return out.stdout.strip()


def cached_binary(binary: GoBinary) -> Path:
    """Where the cached binary is (it may not exist yet)."""
    key = hashlib.sha256(binary.key_inputs(go_version())).hexdigest()[:12]
    return cache_root() / "addon-binaries" / f"{binary.name}-{key}" / binary.name


def build(binary: GoBinary, echo: Echo = print) -> Path:
    """The binary, from the cache or built now."""
    out = cached_binary(binary)
    if out.exists():
        return out
    with _build_lock(echo):
        if out.exists():
            return out
        work = cache_root() / "work" / f"addon-{binary.name}"
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


@contextlib.contextmanager
def _build_lock(echo: Echo) -> Iterator[None]:
    """The component builder's lock: one Go build at a time on this machine."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / "build.lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            echo("waiting for another Go build to finish...")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _go_env() -> dict[str, str]:
    from microkube.components.build import GoToolchain

    return GoToolchain.detect().env(cgo=False)


def _go(args: list[str], cwd: Path, log: Path, capture: bool = False) -> str:
    with log.open("a") as f:
        f.write(f"$ go {' '.join(args)}\n")
        f.flush()
        proc = subprocess.run(["go", *args], cwd=cwd, env=_go_env(), text=True, check=False,
                              stdout=subprocess.PIPE if capture else f, stderr=f)
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:]
        raise MicrokubeError(f"'go {args[0]}' failed in {cwd}: {' '.join(tail)} (log: {log})")
    return proc.stdout if capture else ""


def _build_args(binary: GoBinary, out: Path) -> list[str]:
    args = ["build", "-trimpath", "-buildvcs=false"]
    if binary.tags:
        args += ["-tags", ",".join(binary.tags)]
    args += ["-ldflags", " ".join(["-s", "-w", *binary.ldflags]), "-o", str(out), binary.package]
    return args


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
