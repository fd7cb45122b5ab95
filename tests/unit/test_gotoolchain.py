"""The shared Go toolchain: proxy-only environment, one lock, one way to run go build."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from microkube.gotoolchain import (
    DEFAULT_PROXY,
    GoCommandError,
    GoToolchain,
    build_args,
    build_lock,
    proxy_only,
    toolchain,
)

needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed")


@pytest.mark.parametrize(("goproxy", "expected"), [
    ("https://proxy.golang.org,direct", "https://proxy.golang.org"),
    ("https://a.example|https://b.example|direct", "https://a.example,https://b.example"),
    ("direct", DEFAULT_PROXY),
    ("off", DEFAULT_PROXY),
    ("", DEFAULT_PROXY),
])
def test_proxy_never_falls_back_to_direct(goproxy: str, expected: str) -> None:
    assert proxy_only(goproxy) == expected


def test_environment_is_proxy_only_and_local_toolchain() -> None:
    go = GoToolchain("/usr/bin/go", "go1.26.8", "linux", "amd64", "https://p.example")
    env = go.env(cgo=False)
    assert env["GOPROXY"] == "https://p.example"
    assert env["GOTOOLCHAIN"] == "local"
    assert env["GOWORK"] == "off"
    assert env["GOFLAGS"] == ""
    assert env["CGO_ENABLED"] == "0"
    assert go.env(cgo=True)["CGO_ENABLED"] == "1"


def test_build_args() -> None:
    out = Path("/o/x")
    assert build_args("./cmd/x", out) == [
        "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", "/o/x", "./cmd/x"]
    args = build_args("./cmd/x", out, tags=["a", "b"], ldflags=["-X m.v=1"], buildmode="pie")
    assert args[3] == "-buildmode=pie"
    assert args[args.index("-tags") + 1] == "a,b"
    assert args[args.index("-ldflags") + 1] == "-s -w -X m.v=1"


@needs_go
def test_detected_once_per_process() -> None:
    assert toolchain() is toolchain()
    assert toolchain().version.startswith("go")


@needs_go
def test_run_builds_a_module_and_reports_failures(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "go.mod").write_text("module example.local/hello\n\ngo 1.21\n")
    (src / "main.go").write_text(
        'package main\n\nimport "fmt"\n\nvar version = "dev"\n\n'
        'func main() { fmt.Println("hello", version) }\n')
    log = tmp_path / "build.log"
    out = tmp_path / "hello"
    toolchain().run(build_args(".", out, ldflags=["-X main.version=1.2"]), src, log)
    assert subprocess.run([str(out)], capture_output=True, text=True).stdout == "hello 1.2\n"
    assert log.read_text().startswith("$ go build -trimpath")

    (src / "main.go").write_text("package main\n\nfunc main() { undefined() }\n")
    with pytest.raises(GoCommandError, match=r"'go build' exited 1: .*undefined") as e:
        toolchain().run(build_args(".", out), src, log)
    assert e.value.log == log


def test_lock_waits_for_the_other_holder(tmp_path: Path) -> None:
    lock = tmp_path / "cache" / "build.lock"
    lock.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time\n"
         f"f = open({str(lock)!r}, 'w'); fcntl.flock(f, fcntl.LOCK_EX)\n"
         "print('held', flush=True); time.sleep(1.0)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        said: list[str] = []
        started = time.monotonic()
        with build_lock(lock, said.append):
            waited = time.monotonic() - started
        assert said == ["waiting for another Go build to finish..."]
        assert waited > 0.3
        assert holder.wait(5) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    said.clear()
    with build_lock(lock, said.append):  # free now: no waiting line
        pass
    assert said == []
