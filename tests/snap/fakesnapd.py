"""Just enough of snapd to run an unpacked microkube snap: hooks and daemon apps.

It lays the snap out the way snapd does (below a private root instead of /):

    <root>/snap/microkube/<rev>           the unpacked .snap      ($SNAP)
    <root>/var/snap/microkube/<rev>       per-revision data       ($SNAP_DATA)
    <root>/var/snap/microkube/common      shared across revisions ($SNAP_COMMON)

runs hooks and the daemon apps' commands from meta/snap.yaml with the
environment snapd gives them, in a network namespace. Like systemd for snapd
it puts each daemon app in a cgroup of its own, and stops it as systemd's
default KillMode=control-group does: SIGTERM to every process of the cgroup
(a containerd's shims too), SIGKILL after stop-timeout, then the post-stop
command. ``snapctl get`` answers from a dict the test sets, as
``snap set`` would; no other snapctl call is needed by the hooks.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from microkube.services.cleanup import mounts_below

# systemd's PATH for services; snapd adds nothing for a classic snap without environment.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

FAKE_SNAPCTL = """#!{python}
import json, os, sys
args = sys.argv[1:]
if len(args) < 2 or args[0] != "get":
    sys.exit("fake snapctl: only 'get' is implemented")
key = args[-1]
value = json.load(open(os.environ["FAKE_SNAPCTL_CONFIG"]))
for part in key.split("."):
    value = value.get(part, {{}}) if isinstance(value, dict) else {{}}
if "-d" in args:
    print(json.dumps({{key: value}}))
elif isinstance(value, dict):
    print(json.dumps(value) if value else "")
else:
    print(value)
"""


def _seconds(text: str | None, default: float) -> float:
    if not text:
        return default
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text)
    if not m:
        return default
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value * 60 if m.group(2) == "m" else value


def _hierarchy() -> Path:
    """The cgroup hierarchy that tracks the daemons' processes (as systemd's does)."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return root
    return root / "pids" if (root / "pids").is_dir() else next(
        p for p in root.iterdir() if p.is_dir() and not p.is_symlink())


def _cgroup_pids(cgroup: Path) -> set[int]:
    pids: set[int] = set()
    for procs in cgroup.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(x) for x in procs.read_text().split())
    return pids


def _signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@dataclass
class Daemon:
    app: str
    spec: dict[str, Any]
    cgroup: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None


@dataclass
class FakeSnapd:
    root: Path
    netns: str
    name: str = "microkube"
    revision: str = "x1"
    options: dict[str, Any] = field(default_factory=dict)
    daemons: dict[str, Daemon] = field(default_factory=dict)

    # --- layout --------------------------------------------------------------------
    def snap_dir(self, revision: str | None = None) -> Path:
        return self.root / "snap" / self.name / (revision or self.revision)

    def data_dir(self, revision: str | None = None) -> Path:
        return self.root / "var" / "snap" / self.name / (revision or self.revision)

    @property
    def common_dir(self) -> Path:
        return self.root / "var" / "snap" / self.name / "common"

    @property
    def meta(self) -> dict[str, Any]:
        return dict(yaml.safe_load((self.snap_dir() / "meta" / "snap.yaml").read_text()))

    def install(self, snap_file: Path) -> None:
        """Unpack the .snap as revision x1 and create the data directories, as snapd does."""
        target = self.snap_dir()
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["unsquashfs", "-q", "-n", "-d", str(target), str(snap_file)], check=True,
                       stdout=subprocess.DEVNULL)
        self._current()
        for d in (self.data_dir(), self.common_dir):
            d.mkdir(parents=True, exist_ok=True)

    def refresh_to(self, revision: str) -> None:
        """A new revision of the same snap: snapd copies $SNAP_DATA, then flips 'current'."""
        os.symlink(self.revision, self.snap_dir(revision))  # the same payload, a new revision
        subprocess.run(["cp", "-a", str(self.data_dir()), str(self.data_dir(revision))], check=True)
        self.revision = revision
        self._current()

    def _current(self) -> None:
        for parent in (self.snap_dir().parent, self.data_dir().parent):
            parent.mkdir(parents=True, exist_ok=True)
            link = parent / "current"
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(self.revision)

    # --- environment -------------------------------------------------------------------
    def environment(self, hook: bool = False) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k in ("LANG", "LC_ALL", "TERM") or k == "HOME"}
        meta = self.meta
        env.update({
            "PATH": SYSTEMD_PATH,
            "SNAP": str(self.snap_dir()),
            "SNAP_DATA": str(self.data_dir()),
            "SNAP_COMMON": str(self.common_dir),
            "SNAP_REVISION": self.revision,
            "SNAP_NAME": self.name,
            "SNAP_INSTANCE_NAME": self.name,
            "SNAP_VERSION": str(meta["version"]),
            "SNAP_ARCH": "amd64",
            "SNAP_USER_DATA": str(self.root / "root" / "snap" / self.name / self.revision),
            "SNAP_USER_COMMON": str(self.root / "root" / "snap" / self.name / "common"),
            "SNAP_REAL_HOME": os.environ.get("HOME", "/root"),
        })
        env.update({k: str(v) for k, v in (meta.get("environment") or {}).items()})
        if hook:
            fake = self.root / "fake-snapctl"
            fake.mkdir(exist_ok=True)
            (fake / "snapctl").write_text(FAKE_SNAPCTL.format(python=sys.executable))
            (fake / "snapctl").chmod(0o755)
            config = self.root / "snapctl-config.json"
            config.write_text(json.dumps(self.options))
            env["PATH"] = f"{fake}:{env['PATH']}"
            env["FAKE_SNAPCTL_CONFIG"] = str(config)
        return env

    def in_netns(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--", *argv]

    # --- hooks -------------------------------------------------------------------------
    def run_hook(self, hook: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        path = self.snap_dir() / "meta" / "hooks" / hook
        return subprocess.run(self.in_netns([str(path)]), env=self.environment(hook=True),
                              capture_output=True, text=True, timeout=timeout, cwd="/")

    # --- daemon apps ---------------------------------------------------------------------
    def _argv(self, command: str) -> list[str]:
        words = shlex.split(command)
        return [str(self.snap_dir() / words[0]), *words[1:]]

    def daemon_apps(self) -> dict[str, dict[str, Any]]:
        """The daemon apps, ordered so each comes after the ones it names in 'after'."""
        apps = {n: a for n, a in self.meta["apps"].items() if a.get("daemon")}
        ordered: dict[str, dict[str, Any]] = {}
        while len(ordered) < len(apps):
            for n, a in apps.items():
                if n not in ordered and all(d in ordered for d in a.get("after", [])):
                    ordered[n] = a
        return ordered

    @property
    def cgroup_parent(self) -> Path:
        return _hierarchy() / "microkube-test" / f"snapd-{self.netns}"

    def start_daemons(self) -> None:
        logs = self.root / "daemon-logs"
        logs.mkdir(exist_ok=True)
        for app, spec in self.daemon_apps().items():
            cgroup = self.cgroup_parent / app
            cgroup.mkdir(parents=True, exist_ok=True)
            log = logs / f"{app}.log"
            # Into the app's cgroup first, then the command: everything it forks stays there.
            argv = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup / "cgroup.procs"),
                    *self.in_netns(self._argv(spec["command"]))]
            with log.open("ab") as out:
                proc = subprocess.Popen(argv, env=self.environment(), stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT, cwd="/")
            self.daemons[app] = Daemon(app, spec, cgroup, proc, log)

    def exited(self) -> dict[str, int]:
        return {n: d.proc.returncode for n, d in self.daemons.items()
                if d.proc is not None and d.proc.poll() is not None}

    def stop_daemons(self) -> None:
        """Reverse start order, each the way systemd stops a unit; then its post-stop command."""
        for app in reversed(list(self.daemons)):
            d = self.daemons[app]
            deadline = time.monotonic() + _seconds(d.spec.get("stop-timeout"), 10.0)
            _signal_all(_cgroup_pids(d.cgroup), signal.SIGTERM)
            while _cgroup_pids(d.cgroup) and time.monotonic() < deadline:
                time.sleep(0.1)
            while _cgroup_pids(d.cgroup):
                _signal_all(_cgroup_pids(d.cgroup), signal.SIGKILL)
                time.sleep(0.1)
            if d.proc is not None:
                d.proc.wait()
            with contextlib.suppress(OSError):
                d.cgroup.rmdir()
            post = d.spec.get("post-stop-command")
            if post:
                subprocess.run(self.in_netns(self._argv(post)), env=self.environment(),
                               capture_output=True, timeout=120, check=False, cwd="/")
        self.daemons.clear()

    def log_tail(self, lines: int = 15) -> str:
        out = []
        for d in self.daemons.values():
            if d.log and d.log.exists():
                tail = d.log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {d.app}\n" + "\n".join(tail))
        return "\n".join(out)

    # --- what the node left ------------------------------------------------------------
    def processes(self) -> list[psutil.Process]:
        """Every process run from this snap or naming its directories, and their children."""
        marker = str(self.root)
        found: dict[int, psutil.Process] = {}
        for p in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if p.pid != os.getpid() and any(marker in part for part in p.info.get("cmdline") or []):
                    found[p.pid] = p
                    found.update((c.pid, c) for c in p.children(recursive=True))
        return list(found.values())

    def mounts(self) -> list[Path]:
        return mounts_below(self.root)

    def kill_everything(self) -> None:
        """The test's own safety net: by pid, then lazy unmounts and the apps' cgroups."""
        for d in self.daemons.values():
            _signal_all(_cgroup_pids(d.cgroup), signal.SIGKILL)
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        self.daemons.clear()
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                p.kill()
        deadline = time.monotonic() + 10
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        for point in self.mounts():  # deepest first
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        if self.cgroup_parent.is_dir():
            for child in self.cgroup_parent.iterdir():
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                self.cgroup_parent.rmdir()
