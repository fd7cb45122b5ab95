"""Build the pinned components from published Go modules, cached, and install them.

For each component of the manifest:

1. compute its cache key; a finished cache entry means nothing to do;
2. otherwise write a work module under ``<cache>/work/<name>/`` (go.mod derived
   from the manifest, our wrapper main.go if it has one), resolve it with
   ``go mod tidy`` (wrappers) or ``go get <pkg>@<version>`` (plain modules), and
   ``go build`` each binary with -trimpath and version-stamping ldflags;
3. install the cached binaries into the snap tree (bin/, opt/cni/bin/) as hard
   links (copies across file systems) and create the multicall symlinks.

Go runs through microkube.gotoolchain, shared with the image builds: one
lock, one ``go env`` probe, and only the Go module proxy is reached.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from microkube.components.cache import CacheEntry, ComponentCache, cache_key
from microkube.components.gomod import UpstreamGoMod, go_version_tuple, render
from microkube.components.manifest import COMPONENTS_DIR, Component, Manifest
from microkube.errors import MicrokubeError, UsageError
from microkube.fsutil import write_atomic
from microkube.gotoolchain import GoCommandError, GoToolchain, build_args, build_lock, toolchain
from microkube.paths import Paths

LOCAL_COPY = "upstream"  # folder of the work module that holds a trimmed copy of the pin
INSTALL_RECORD_VERSION = 1


@dataclass(frozen=True)
class BuildResult:
    component: Component
    entry: CacheEntry
    cached: bool
    seconds: float  # this run's time for the component (build or cache look-up)


class BuildError(MicrokubeError):
    pass


Echo = Callable[..., None]


def _echo(*parts: str, end: str = "\n", stream: TextIO | None = None) -> None:
    print(*parts, end=end, file=stream or sys.stdout, flush=True)


def wrapper_sources(component: Component, components_dir: Path = COMPONENTS_DIR) -> dict[str, bytes]:
    """Our Go sources for a wrapper component, file name -> bytes: every *.go file of its
    folder, the *.go files of each ``shared`` folder (they join the wrapper's package main,
    so one source serves several wrappers), and the go.mod of one of our own modules
    (``Component.is_local``). They are written into the work module and hashed into the
    cache key. Raises UsageError for a folder without Go files, a missing go.mod, or a
    shared file whose name the wrapper already uses."""
    if not component.wrapper:
        return {}
    where = f"components.yaml: component '{component.name}'"
    folder = components_dir / component.wrapper
    files = {p.name: p.read_bytes() for p in sorted(folder.glob("*.go"))}
    if component.is_local and files:
        gomod = folder / "go.mod"
        if not gomod.is_file():
            raise UsageError(f"{where}: {folder} has no go.mod (one of our own modules needs one)")
        files["go.mod"] = gomod.read_bytes()
    if not files:
        raise UsageError(f"{where}: wrapper folder {folder} has no .go file")
    for shared in component.shared:
        found = sorted((components_dir / shared).glob("*.go"))
        if not found:
            raise UsageError(f"{where}: shared folder {components_dir / shared} has no .go file")
        for p in found:
            if p.name in files:
                raise UsageError(f"{where}: shared file {p} has the name of a file of "
                                 f"the wrapper {folder}")
            files[p.name] = p.read_bytes()
    return files


class Builder:
    """Builds components into the cache and installs them into a snap tree."""

    def __init__(
        self,
        manifest: Manifest,
        paths: Paths | None = None,
        cache_dir: Path | None = None,
        components_dir: Path = COMPONENTS_DIR,
        echo: Echo = _echo,
    ) -> None:
        self.manifest = manifest
        self.paths = paths or Paths.from_env()
        if cache_dir is not None:
            self.paths = self.paths._replace(cache=cache_dir)
        self.cache = ComponentCache(self.paths.components_cache)
        self.work_root = self.paths.go_work_dir
        self.components_dir = components_dir
        self.echo = echo

    @property
    def go(self) -> GoToolchain:
        """The machine's Go toolchain (probed on first use, once per process)."""
        return toolchain()

    # --- the whole run -------------------------------------------------------
    def build(self, only: Sequence[str] = ()) -> list[BuildResult]:
        """Build (or find cached) the chosen components, then install them."""
        chosen = [self.manifest.get(n) for n in only] if only else list(self.manifest.components)
        results: list[BuildResult] = []
        with build_lock(self.paths.go_build_lock, self.echo):
            try:
                for comp in chosen:
                    results.append(self.build_one(comp))
            finally:
                # What did build is installed even when a later component fails.
                self.install(results)
        return results

    def build_one(self, comp: Component) -> BuildResult:
        start = time.monotonic()
        key = self.key(comp)
        label = f"{comp.name} {comp.version}"
        entry = self.cache.lookup(comp.name, key)
        if entry is not None:
            self.echo(f"{label}: cached")
            return BuildResult(comp, entry, True, time.monotonic() - start)
        self.echo(f"{label}: building...", end="")
        entry = self._build_into_cache(comp, key)
        took = time.monotonic() - start
        self.echo(f" done in {took:.0f}s")
        self.cache.prune(comp.name, key)
        return BuildResult(comp, entry, False, took)

    def key(self, comp: Component) -> str:
        return cache_key(comp, self.toolchain_facts(comp),
                         wrapper_sources(comp, self.components_dir))

    def toolchain_facts(self, comp: Component) -> dict[str, str]:
        """The parts of the machine a build of ``comp`` depends on."""
        facts = {"go": self.go.version, "goos": self.go.goos, "goarch": self.go.goarch}
        if comp.cgo:
            facts["cc"] = _first_line([os.environ.get("CC", "gcc"), "--version"],
                                      f"{comp.name} needs a C compiler (cgo); "
                                      "on Debian: apt-get install gcc")
            for lib in comp.c_libs:
                facts[f"lib:{lib}"] = _first_line(
                    ["pkg-config", "--modversion", lib],
                    f"{comp.name} needs the C library {lib} (pkg-config found none); "
                    f"on Debian: apt-get install {lib}-dev pkg-config",
                )
        return facts

    # --- one component ---------------------------------------------------------
    def _build_into_cache(self, comp: Component, key: str) -> CacheEntry:
        work = self.work_root / comp.name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        log = work / "build.log"
        staging = self.cache.staging(comp.name, key)
        steps: dict[str, float] = {}
        cold_start = time.monotonic()
        try:
            t = time.monotonic()
            self._prepare_module(comp, work, log)
            steps["modules"] = round(time.monotonic() - t, 1)
            self.echo(" modules", end="")
            for binary in comp.binaries:
                t = time.monotonic()
                self._go_build(comp, binary.name, binary.package, binary.tags,
                               staging / "bin" / binary.name, work, log)
                steps[binary.name] = round(time.monotonic() - t, 1)
                self.echo(f" {binary.name}", end="")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        meta: dict[str, Any] = {
            "component": comp.name,
            "module": comp.module,
            "version": comp.version,
            "key": key,
            "go": self.go.version,
            "cold_seconds": round(time.monotonic() - cold_start, 1),
            "steps_seconds": steps,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "binaries": {b.name: (staging / "bin" / b.name).stat().st_size
                         for b in comp.binaries},
        }
        return self.cache.commit(staging, comp.name, key, meta)

    def _prepare_module(self, comp: Component, work: Path, log: Path) -> None:
        """Write the work module and let go resolve its full dependency set."""
        if comp.is_local:
            # One of our own modules: its folder is the whole module; nothing to download.
            for name, data in wrapper_sources(comp, self.components_dir).items():
                write_atomic(work / name, data)
            self._run(comp, ["mod", "tidy"], work, log)
            return
        info = self._download(comp, work, log)
        upstream = UpstreamGoMod.parse(Path(info["GoMod"]).read_text())
        if go_version_tuple(upstream.go) > go_version_tuple(self.go.version):
            raise BuildError(f"{comp.name} {comp.version} needs Go {upstream.go} or newer; "
                             f"this machine has {self.go.version}")
        local_copy = None
        if comp.omit_packages:
            local_copy = LOCAL_COPY
            copy_omitting(Path(info["Dir"]), work / LOCAL_COPY, comp.omit_packages)
        write_atomic(work / "go.mod", render(comp, upstream, local_copy))
        for name, data in wrapper_sources(comp, self.components_dir).items():
            write_atomic(work / name, data)
        if comp.wrapper:
            self._run(comp, ["mod", "tidy"], work, log)
        else:
            pkgs = dict.fromkeys(b.package for b in comp.binaries)
            self._run(comp, ["get", *(f"{p}@{comp.version}" for p in pkgs)], work, log)

    def _download(self, comp: Component, work: Path, log: Path) -> dict[str, Any]:
        """Fetch the pinned module (checked against go.sum's database) and describe it."""
        out = self._run(comp, ["mod", "download", "-json", f"{comp.module}@{comp.version}"],
                        work, log, capture=True)
        info: dict[str, Any] = json.loads(out)
        if info.get("Error"):
            raise BuildError(f"{comp.name}: {comp.module}@{comp.version}: {info['Error']}")
        return info

    def _go_build(self, comp: Component, name: str, package: str, extra_tags: Sequence[str],
                  out: Path, work: Path, log: Path) -> None:
        # The stamps (expanded ldflags) make --version honest.
        self._run(comp, build_args(package, out, tags=[*comp.tags, *extra_tags],
                                   ldflags=comp.expanded_ldflags, buildmode=comp.buildmode),
                  work, log)

    def _run(self, comp: Component, args: list[str], work: Path, log: Path,
             capture: bool = False) -> str:
        try:
            # A long compile still shows it is alive.
            return self.go.run(args, work, log, cgo=comp.cgo, capture=capture,
                               heartbeat=lambda: self.echo(".", end=""))
        except GoCommandError as e:
            self.echo(" failed")
            for line in e.tail:
                self.echo(f"  | {line}", stream=sys.stderr)
            raise BuildError(f"building {comp.name} failed: 'go {args[0]}' exited "
                             f"{e.returncode}; full log: {log}") from None

    # --- install -----------------------------------------------------------------
    def dest_dir(self, comp: Component) -> Path:
        return self.paths.component_dir(comp.dest)

    def install(self, results: Sequence[BuildResult]) -> None:
        """Place the binaries in the snap tree and record what is installed.

        The record (versions.json) lists every component of the manifest, built
        or not, so `microkube version` can say which ones are missing.
        """
        before = self._read_record()
        keys = {name: rec.get("key") for name, rec in before.items()}
        for r in results:
            dest = self.dest_dir(r.component)
            dest.mkdir(parents=True, exist_ok=True)
            for b in r.component.binaries:
                _place(r.entry.bin_dir / b.name, dest / b.name)
            for link, target in r.component.links:
                _symlink(target, dest / link)
            keys[r.component.name] = r.entry.path.name.rsplit("-", 1)[-1]
        after = {c.name: self._record_of(c, keys.get(c.name)) for c in self.manifest.components}
        self._remove_stale(before, after)
        doc = {"version": INSTALL_RECORD_VERSION, "components": after}
        write_atomic(self.paths.versions_file, json.dumps(doc, indent=2) + "\n")

    def _record_of(self, comp: Component, key: str | None) -> dict[str, Any]:
        rel = self.dest_dir(comp).relative_to(self.paths.snap)
        return {
            "module": comp.module,
            "version": comp.version,
            "key": key,  # the cache entry installed, None if never built
            "files": [str(rel / b.name) for b in comp.binaries]
                     + [str(rel / link) for link, _ in comp.links],
            "version_command": list(comp.version_command),
        } | ({"parts": {part: {"version": version, "version_command": list(command)}
                        for part, version, command in comp.part_pins()}}
             if comp.part_versions else {})

    def _read_record(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.paths.versions_file.read_text())
            comps: dict[str, Any] = doc.get("components", {})
            return dict(comps)
        except (OSError, ValueError, AttributeError):
            return {}

    def _remove_stale(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Files a dropped or renamed component left behind go away."""
        keep = {f for rec in after.values() for f in rec.get("files", [])}
        for rec in before.values():
            for f in rec.get("files", []):
                if f not in keep:
                    with contextlib.suppress(FileNotFoundError):
                        (self.paths.snap / f).unlink()


def copy_omitting(module_dir: Path, dest: Path, omit: Sequence[str]) -> None:
    """Copy a downloaded module, turning each omitted package into an empty one.

    The package keeps its name, so upstream's blank imports of it still compile,
    but it registers nothing and imports nothing: a dependency that the proxy
    cannot serve drops out of the build.
    """
    shutil.copytree(module_dir, dest, symlinks=True)
    for root, dirs, _ in os.walk(dest):  # the module cache is read-only
        os.chmod(root, 0o755)
        for d in dirs:
            os.chmod(Path(root) / d, 0o755)
    for folder in omit:
        pkg_dir = dest / folder
        sources = [p for p in sorted(pkg_dir.glob("*.go")) if not p.name.endswith("_test.go")]
        if not sources:
            raise UsageError(f"components.yaml: omit_packages: {folder} has no Go package in "
                             f"{module_dir.name}")
        m = re.search(r"^package\s+(\w+)", sources[0].read_text(), re.M)
        name = m.group(1) if m else pkg_dir.name
        for src in pkg_dir.glob("*.go"):
            src.unlink()
        write_atomic(pkg_dir / "omitted.go",
                     f"// Left out by microkube: see omit_packages in components.yaml.\n"
                     f"package {name}\n")


def _first_line(cmd: list[str], missing: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise MicrokubeError(missing) from None
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise MicrokubeError(missing)
    return lines[0]


def _place(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst`` atomically: a hard link, or a copy across file systems."""
    with contextlib.suppress(FileNotFoundError):
        if dst.samefile(src):
            return
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def _symlink(target: str, dst: Path) -> None:
    if dst.is_symlink() and os.readlink(dst) == target:
        return
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, dst)


def with_snap(paths: Paths, snap: Path | None) -> Paths:
    return paths._replace(snap=snap) if snap else paths
