"""The Go toolchain that the component build and the image builds share.

It sits below both ``microkube.components`` and ``microkube.images``:

* one probe of ``go env`` per process (:func:`toolchain`);
* one lock, so only one Go build runs at a time per cache (:func:`build_lock`);
* one way to run ``go`` (:meth:`GoToolchain.run`): only the Go module proxy is
  reached (GOPROXY never falls back to ``direct``, which would clone
  repositories) and GOTOOLCHAIN stays local;
* one ``go build`` command line (:func:`build_args`): -trimpath, no VCS stamps,
  stripped like upstream release binaries.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from microkube.errors import MicrokubeError
from microkube.fsutil import exclusive_lock
from microkube.proc import wait_with_heartbeat

DEFAULT_PROXY = "https://proxy.golang.org"
HEARTBEAT_SECONDS = 60
MISSING = "the Go toolchain ('go') is not on PATH; install Go 1.26 or newer"


class GoCommandError(MicrokubeError):
    """A ``go`` command exited non-zero; ``tail`` holds the last lines of its log."""

    def __init__(self, args: Sequence[str], returncode: int, log: Path, tail: list[str]) -> None:
        self.returncode = returncode
        self.log = log
        self.tail = tail
        last = tail[-1] if tail else f"exit status {returncode}"
        super().__init__(f"'go {args[0]}' exited {returncode}: {last} (log: {log})")


@dataclass(frozen=True)
class GoToolchain:
    """The ``go`` command and the facts about it that shape a build."""

    go: str  # the go command's path
    version: str  # "go1.26.8"
    goos: str
    goarch: str
    proxy: str  # GOPROXY without "direct"/"off"

    @classmethod
    def detect(cls) -> GoToolchain:
        """Probe ``go env`` once. Raises MicrokubeError when Go is missing or broken."""
        go = shutil.which("go")
        if go is None:
            raise MicrokubeError(MISSING)
        out = subprocess.run(
            [go, "env", "-json", "GOVERSION", "GOOS", "GOARCH", "GOPROXY"],
            capture_output=True, text=True, check=False,
        )
        if out.returncode != 0:
            raise MicrokubeError(f"'go env' failed: {out.stderr.strip().splitlines()[-1:]}")
        env = json.loads(out.stdout)
        return cls(go, env["GOVERSION"], env["GOOS"], env["GOARCH"],
                   proxy_only(env.get("GOPROXY", "")))

    def env(self, cgo: bool) -> dict[str, str]:
        """The environment every ``go`` command runs with (the caller's, proxy-only)."""
        env = dict(os.environ)
        env.update(
            CGO_ENABLED="1" if cgo else "0",
            GOPROXY=self.proxy,
            GOTOOLCHAIN="local",
            GOWORK="off",
            GO111MODULE="on",
            GOFLAGS="",  # the flags we need are on each command line
        )
        return env

    def run(self, args: Sequence[str], cwd: Path, log: Path, *, cgo: bool = False,
            capture: bool = False, heartbeat: Callable[[], None] | None = None) -> str:
        """Run ``go <args>`` in ``cwd``, appending the command and its stderr to ``log``.

        Returns stdout when ``capture`` (else stdout goes to the log and "" is returned).
        ``heartbeat`` is called every HEARTBEAT_SECONDS while the command runs.
        Raises GoCommandError when go exits non-zero.
        """
        cmd = [self.go, *args]
        with log.open("a") as f, tempfile.TemporaryFile("w+") as out:
            f.write(f"$ go {' '.join(args)}\n")
            f.flush()
            proc = subprocess.Popen(cmd, cwd=cwd, env=self.env(cgo), text=True,
                                    stdout=out if capture else f, stderr=f)
            wait_with_heartbeat(proc, HEARTBEAT_SECONDS,
                                lambda _: heartbeat() if heartbeat else None)
            out.seek(0)
            stdout = out.read()
        if proc.returncode != 0:
            tail = log.read_text().strip().splitlines()[-12:]
            raise GoCommandError(args, proc.returncode, log, tail)
        return stdout


def proxy_only(goproxy: str) -> str:
    """GOPROXY with "direct" and "off" removed (the configured mirrors kept, in order);
    the public proxy when nothing is left."""
    proxies = [p for p in goproxy.replace("|", ",").split(",") if p and p not in ("direct", "off")]
    return ",".join(proxies) or DEFAULT_PROXY


@functools.cache
def toolchain() -> GoToolchain:
    """The machine's Go toolchain, probed once per process."""
    return GoToolchain.detect()


def build_args(package: str, out: Path, *, tags: Sequence[str] = (),
               ldflags: Sequence[str] = (), buildmode: str | None = None) -> list[str]:
    """The arguments of ``go build`` for one binary: reproducible (-trimpath, no VCS
    stamps) and stripped (-s -w) like upstream's releases, plus ``ldflags``."""
    args = ["build", "-trimpath", "-buildvcs=false"]
    if buildmode:
        args.append(f"-buildmode={buildmode}")
    if tags:
        args += ["-tags", ",".join(tags)]
    args += ["-ldflags", " ".join(["-s", "-w", *ldflags]), "-o", str(out), package]
    return args


@contextlib.contextmanager
def build_lock(lock_file: Path, echo: Callable[[str], None]) -> Iterator[None]:
    """Hold the one Go build lock of a cache (``lock_file``); says so when it must wait."""
    with exclusive_lock(lock_file, echo, "waiting for another Go build to finish..."):
        yield
