"""Just enough of snapd to run an unpacked microkube snap: hooks, daemon apps and snapctl.

It lays the snap out the way snapd does (below a private root instead of /):

    <root>/snap/microkube/<rev>           the unpacked .snap      ($SNAP)
    <root>/var/snap/microkube/<rev>       per-revision data       ($SNAP_DATA)
    <root>/var/snap/microkube/common      shared across revisions ($SNAP_COMMON)

runs hooks and the daemon apps' commands from meta/snap.yaml with the
environment snapd gives them, in a network namespace. Like systemd for snapd
it puts each daemon app in a cgroup of its own, and stops it as systemd's
default KillMode=control-group does: SIGTERM to every process of the cgroup
(a containerd's shims too), SIGKILL after stop-timeout (snapd's default 30 s),
then the post-stop command. A daemon app that exits on its own is cleaned up
the same way and started again after restart-delay if its restart-condition
(snapd's default on-failure) says so.

Hooks and apps find a ``snapctl`` on their PATH that hands its arguments to
this object over a unix socket (snapd's is /run/snapd-snap.socket), and
fakesnapctl.py answers as snapd does: ``get`` from ``options`` (what ``snap
set`` stored), and ``start``, ``stop``, ``restart`` and ``services`` on the
snap's daemon apps. A service command from a hook runs at once (snapd would
queue one from the configure hook until the hook ends; microkube's hooks do not
control services).

``snap_install`` does what ``snap install`` does: unpack, the install hook,
start every enabled daemon app, the configure hook.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import psutil
import yaml

from microkube.services.cleanup import mounts_below
from tests import netns
from tests.snap import fakesnapctl
from tests.snap.fakesnapctl import ServiceStatus

# systemd's PATH for services; snapd adds nothing for a classic snap without environment.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STOP_TIMEOUT = 30.0  # snapd's default TimeoutStopSec (timeout.DefaultTimeout)
SERVICE_COMMAND_TIMEOUT = 150.0  # snapd's configure-hook timeout / 2 (ctlcmd/helpers.go)
RESTART_DELAY = 0.1  # systemd's default RestartSec; snapd sets one only from restart-delay

# The snapctl client: its arguments to the fake snapd, its answer back, as snapctl does.
FAKE_SNAPCTL = """#!{python}
import json, os, socket, sys
try:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(os.environ["FAKE_SNAPD_SOCKET"])
        s.sendall(json.dumps({{"args": sys.argv[1:]}}).encode() + b"\\n")
        reply = json.loads(s.makefile().readline())
except (OSError, KeyError, ValueError) as e:
    sys.exit(f"error: cannot communicate with server: {{e!r}}")
sys.stdout.write(reply["stdout"])
sys.stderr.write(reply["stderr"])
sys.exit(reply["code"])
"""

# exit code of the main process (negative: killed by that signal) -> restart?
_CLEAN_SIGNALS = {-signal.SIGHUP, -signal.SIGINT, -signal.SIGTERM, -signal.SIGPIPE}


def restarts(condition: str | None, code: int) -> bool:
    """Whether systemd restarts a service whose main process ended with this code.

    condition is snap.yaml's restart-condition (unset: snapd's on-failure).
    """
    clean = code == 0 or code in _CLEAN_SIGNALS
    unclean_signal = code < 0 and code not in _CLEAN_SIGNALS
    return {
        "always": True,
        "on-success": clean,
        "on-failure": not clean,
        "on-abnormal": unclean_signal,
        "on-abort": unclean_signal,
    }.get(condition or "on-failure", False)  # never, no, on-watchdog


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
    """One daemon app as systemd holds its unit: enabled, started, its main process."""

    app: str
    spec: dict[str, Any]
    cgroup: Path
    enabled: bool = True
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    wanted: bool = False  # started and not stopped since (systemd's job: active)
    restart_at: float | None = None
    exits: list[int] = field(default_factory=list)  # the exits nobody asked for

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class _SnapctlServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, snapd: FakeSnapd) -> None:
        self.snapd = snapd
        super().__init__(str(path), _SnapctlHandler)


class _SnapctlHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        snapd = cast(_SnapctlServer, self.server).snapd
        answer: list[tuple[str, str, int]] = []

        def command() -> None:
            try:
                answer.append(fakesnapctl.run(snapd, args))
            except Exception as e:  # the test's own fault: say so to the caller, do not hang it
                answer.append(("", f"error: fake snapd: {e!r}\n", 1))

        args = [str(a) for a in json.loads(self.rfile.readline())["args"]]
        worker = threading.Thread(target=command, daemon=True)
        worker.start()
        worker.join(SERVICE_COMMAND_TIMEOUT)  # snapd answers then; the change goes on
        out, err, code = answer[0] if answer else (
            "", f"error: {args[0]} command is taking too long\n", 1)
        self.wfile.write(json.dumps({"stdout": out, "stderr": err, "code": code}).encode() + b"\n")


@dataclass
class FakeSnapd:
    """snapd for one snap below ``root``, its apps in network namespace ``netns``.

    ``options`` is what ``snap set`` stored (a nested dict, read by ``snapctl get``);
    ``daemons`` are the daemon apps' units, in start order. Implements
    fakesnapctl.Services. ``kill_everything`` ends what it started.
    """

    root: Path
    netns: str
    name: str = "microkube"
    revision: str = "x1"
    options: dict[str, Any] = field(default_factory=dict)
    daemons: dict[str, Daemon] = field(default_factory=dict)  # in start order
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _server: _SnapctlServer | None = field(default=None, init=False, repr=False)
    _closing: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False, repr=False)

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

    @property
    def socket_path(self) -> Path:
        return self.root / "snapd.socket"

    def install(self, snap_file: Path) -> None:
        """Unpack the .snap as revision x1 and create the data directories, as snapd does.

        Also starts serving snapctl, and makes the daemon apps' units: enabled unless
        their install-mode is disable.
        """
        target = self.snap_dir()
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["unsquashfs", "-q", "-n", "-d", str(target), str(snap_file)], check=True,
                       stdout=subprocess.DEVNULL)
        self._current()
        for d in (self.data_dir(), self.common_dir):
            d.mkdir(parents=True, exist_ok=True)
        fake = self.root / "fake-snapctl"
        fake.mkdir(exist_ok=True)
        (fake / "snapctl").write_text(FAKE_SNAPCTL.format(python=sys.executable))
        (fake / "snapctl").chmod(0o755)
        self._load_apps()
        self._serve()

    def snap_install(self, snap_file: Path) -> None:
        """What `snap install` does: install, the install hook, start the enabled daemon
        apps, the configure hook. Raises AssertionError with a hook's output if it fails."""
        self.install(snap_file)
        self.expect_hook("install")
        self.start_daemons()
        self.expect_hook("configure")

    def refresh_to(self, revision: str) -> None:
        """A new revision of the same snap: snapd copies $SNAP_DATA, then flips 'current'.

        Disabled daemon apps stay disabled, as snapd keeps them.
        """
        os.symlink(self.revision, self.snap_dir(revision))  # the same payload, a new revision
        subprocess.run(["cp", "-a", str(self.data_dir()), str(self.data_dir(revision))], check=True)
        self.revision = revision
        self._current()
        self._load_apps()

    def _current(self) -> None:
        for parent in (self.snap_dir().parent, self.data_dir().parent):
            parent.mkdir(parents=True, exist_ok=True)
            link = parent / "current"
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(self.revision)

    # --- environment -------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """What snapd gives an app (or, the same here, a hook): $SNAP*, snapctl on PATH."""
        env = {k: v for k, v in os.environ.items()
               if k in ("LANG", "LC_ALL", "TERM") or k == "HOME"}
        meta = self.meta
        env.update({
            "PATH": f"{self.root / 'fake-snapctl'}:{SYSTEMD_PATH}",
            "FAKE_SNAPD_SOCKET": str(self.socket_path),
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
        return env

    def in_netns(self, argv: list[str]) -> list[str]:
        return netns.in_netns(self.netns, argv)

    def snapctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the snapctl the snap's apps find, as one of them would."""
        return subprocess.run(["snapctl", *args], env=self.environment(), capture_output=True,
                              text=True, timeout=300, cwd="/")

    # --- hooks -------------------------------------------------------------------------
    def run_hook(self, hook: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        path = self.snap_dir() / "meta" / "hooks" / hook
        return subprocess.run(self.in_netns([str(path)]), env=self.environment(),
                              capture_output=True, text=True, timeout=timeout, cwd="/")

    def expect_hook(self, hook: str) -> None:
        """Run a hook that must succeed (snapd undoes the change when one fails)."""
        proc = self.run_hook(hook)
        assert proc.returncode == 0, f"{hook} hook failed:\n{proc.stdout}{proc.stderr}"

    # --- daemon apps ---------------------------------------------------------------------
    def _argv(self, command: str) -> list[str]:
        words = shlex.split(command)
        return [str(self.snap_dir() / words[0]), *words[1:]]

    def daemon_apps(self) -> dict[str, dict[str, Any]]:
        """The daemon apps, ordered so each comes after the ones it names in 'after'."""
        # snapd runs a timer app on its schedule, not at install: the fake leaves them out.
        apps = {n: a for n, a in self.meta["apps"].items()
                if a.get("daemon") and "timer" not in a}
        ordered: dict[str, dict[str, Any]] = {}
        while len(ordered) < len(apps):
            for n, a in apps.items():
                if n not in ordered and all(d in ordered for d in a.get("after", [])):
                    ordered[n] = a
        return ordered

    def _load_apps(self) -> None:
        with self._lock:
            old = self.daemons
            self.daemons = {}
            for app, spec in self.daemon_apps().items():
                enabled = old[app].enabled if app in old else spec.get("install-mode") != "disable"
                self.daemons[app] = Daemon(app, spec, self.cgroup_parent / app, enabled=enabled)

    @property
    def cgroup_parent(self) -> Path:
        return _hierarchy() / "microkube-test" / f"snapd-{self.netns}"

    def start_daemons(self) -> None:
        """Start every enabled daemon app, as snapd does after an install or refresh."""
        self.start([a for a, d in self.daemons.items() if d.enabled], enable=False)

    def stop_daemons(self) -> None:
        """Stop every daemon app, as snapd does before a refresh or remove; enabled stays."""
        self.stop(list(self.daemons), disable=False)

    def exited(self) -> dict[str, int]:
        """The daemon apps that exited without being asked to, with their last exit code."""
        with self._lock:
            return {n: d.exits[-1] for n, d in self.daemons.items() if d.exits}

    # fakesnapctl.Services: what snapctl start, stop, restart and services do.
    def service_apps(self) -> list[str]:
        return list(self.daemons)

    def status(self, app: str) -> ServiceStatus:
        with self._lock:
            d = self.daemons[app]
            return ServiceStatus(app, d.enabled, d.running)

    def start(self, apps: list[str], enable: bool) -> None:
        with self._lock:
            for app in apps:
                d = self.daemons[app]
                d.enabled = d.enabled or enable
                if not d.running:
                    d.wanted, d.restart_at = True, None
                    self._spawn(d)

    def stop(self, apps: list[str], disable: bool) -> None:
        with self._lock:
            for app in reversed(apps):
                d = self.daemons[app]
                d.enabled = d.enabled and not disable
                was_started = d.wanted or d.running
                d.wanted, d.restart_at = False, None
                if was_started:
                    self._end(d)

    def restart(self, apps: list[str]) -> None:
        with self._lock:
            self.stop(apps, disable=False)
            self.start(apps, enable=False)

    def _spawn(self, d: Daemon) -> None:
        logs = self.root / "daemon-logs"
        logs.mkdir(exist_ok=True)
        d.cgroup.mkdir(parents=True, exist_ok=True)
        d.log = logs / f"{d.app}.log"
        # Into the app's cgroup first, then the command: everything it forks stays there.
        argv = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(d.cgroup / "cgroup.procs"),
                *self.in_netns(self._argv(d.spec["command"]))]
        with d.log.open("ab") as out:
            d.proc = subprocess.Popen(argv, env=self.environment(), stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, cwd="/")

    def _end(self, d: Daemon) -> None:
        """Stop what is left of the unit as systemd does (KillMode=control-group), then
        its post-stop command."""
        deadline = time.monotonic() + _seconds(d.spec.get("stop-timeout"), STOP_TIMEOUT)
        _signal_all(_cgroup_pids(d.cgroup), signal.SIGTERM)
        while _cgroup_pids(d.cgroup) and time.monotonic() < deadline:
            time.sleep(0.1)
        while _cgroup_pids(d.cgroup):
            _signal_all(_cgroup_pids(d.cgroup), signal.SIGKILL)
            time.sleep(0.1)
        if d.proc is not None:
            d.proc.wait()
            d.proc = None
        with contextlib.suppress(OSError):
            d.cgroup.rmdir()
        post = d.spec.get("post-stop-command")
        if post:
            subprocess.run(self.in_netns(self._argv(post)), env=self.environment(),
                           capture_output=True, timeout=120, check=False, cwd="/")

    def _supervise(self) -> None:
        """systemd's part: a started app whose process ended is cleaned up and restarted."""
        while not self._closing.wait(0.2):
            with self._lock:
                for d in self.daemons.values():
                    if d.wanted and d.proc is not None and d.proc.poll() is not None:
                        code = d.proc.returncode
                        d.exits.append(code)
                        self._end(d)
                        if restarts(d.spec.get("restart-condition"), code):
                            d.restart_at = time.monotonic() + _seconds(
                                d.spec.get("restart-delay"), RESTART_DELAY)
                        else:
                            d.wanted = False
                    elif d.wanted and d.proc is None and d.restart_at is not None \
                            and time.monotonic() >= d.restart_at:
                        d.restart_at = None
                        self._spawn(d)

    def _serve(self) -> None:
        if self._server is not None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._server = _SnapctlServer(self.socket_path, self)
        for target in (self._server.serve_forever, self._supervise):
            thread = threading.Thread(target=target, name=f"fakesnapd-{target.__name__}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop serving snapctl and supervising; the daemons are left as they are."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()

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
        self.close()
        for d in self.daemons.values():
            d.wanted = False
            _signal_all(_cgroup_pids(d.cgroup), signal.SIGKILL)
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            d.proc = None
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
