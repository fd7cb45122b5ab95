"""The deployer's loop: a pass at start, then one whenever the folder changes.

The folder is watched with inotify (``inotify_simple``): a file written and
closed, moved in or out, or deleted starts a pass after a short quiet time
(so a burst of writes is one pass). Every ``--resync-interval`` seconds a pass runs anyway:
it retries files that failed (say, a custom resource whose CRD arrived since)
and catches a chart archive changed outside the folder.

It runs as a thread of the cluster agent (:class:`Background`, see
microkube.services.manifests for why), restarted there with a backoff when it fails.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import threading
import time
from collections.abc import Callable

from inotify_simple import Event, INotify, flags

from microkube.errors import MicrokubeError, UsageError
from microkube.manifests.deployer import Deployer
from microkube.paths import Paths

RESYNC = 30.0  # seconds between passes when nothing changes (--resync-interval)
QUIET = 0.1  # seconds without events before a pass starts
TICK_MS = 1000  # how long one wait for events lasts, so a stop is seen within a second
# (without a wake-up descriptor; with one, a wait lasts until the next resync)
WATCHED = (flags.CLOSE_WRITE | flags.MOVED_TO | flags.MOVED_FROM | flags.DELETE
           | flags.DELETE_SELF | flags.MOVE_SELF)
RESTART_FIRST = 2.0  # seconds before the first restart after a failure; doubled each time
RESTART_MAX = 60.0  # the longest wait between restarts (s); a run this long resets the wait
GATE_WAIT = 1.0  # seconds between looks for the admin kubeconfig before the first pass
log = logging.getLogger("microkube.manifests")


class Watcher:
    """Runs ``deployer`` at start and on every change of its folder until :meth:`stop`."""

    def __init__(self, deployer: Deployer, resync: float = RESYNC,
                 stopping: threading.Event | None = None,
                 after_pass: Callable[[], None] = lambda: None, wake: int | None = None) -> None:
        self.deployer = deployer
        self.resync = resync  # seconds
        self.inotify = INotify()
        self.watch = -1
        self.stopping = stopping or threading.Event()
        self.after_pass = after_pass  # called after every pass (log rotation)
        self.wake = wake  # a descriptor that turns readable when ``stopping`` is set

    def _read(self, timeout_ms: int) -> list[Event]:
        """The folder's events within ``timeout_ms``; none, at once, when woken to stop."""
        if self.wake is None:
            events: list[Event] = self.inotify.read(timeout=timeout_ms)
            return events
        readable = select.select([self.inotify, self.wake], [], [], timeout_ms / 1000)[0]
        events = self.inotify.read(timeout=0) if self.inotify in readable else []
        return events

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def _watch(self) -> None:
        """(Re)create the folder and watch it; after a removal of the folder itself too."""
        folder = self.deployer.folder
        folder.mkdir(parents=True, exist_ok=True)
        self.watch = self.inotify.add_watch(folder, WATCHED)

    def launch_addons(self) -> None:
        """In the snap, run the launch configuration's addon steps once the Node is Ready.

        snapd starts the daemons with no ``microkube start`` to run them (a launch file
        read at install, or ``snap set microkube config=``). A failed step is logged and
        tried again at a later pass; never raises.
        """
        paths = self.deployer.paths
        if not paths.in_snap:
            return  # `microkube start` runs them, printing its progress
        from microkube.config.launch import pending_addons

        if not pending_addons(paths):
            return
        from microkube.addons.launch import apply_pending_addons_if_ready
        from microkube.errors import MicrokubeError

        try:
            done = apply_pending_addons_if_ready(paths, lambda text: log.info("%s", text.rstrip()))
        except (MicrokubeError, OSError) as e:
            log.warning("launch configuration addons: %s (retried at the next pass)", e)
            return
        if done is not None:
            log.info("launch configuration: %s done", ", ".join(done))

    def run(self) -> None:
        """Pass after pass until :meth:`stop`; raises what a pass raises beyond a file's
        failure (a broken state file, a folder that cannot be made). Closes its inotify."""
        try:
            self._run()
        finally:
            self.inotify.close()

    def _pass(self, everything: bool = False) -> None:
        self.deployer.sync(everything)
        self.launch_addons()
        self.after_pass()

    def _run(self) -> None:
        self._watch()
        log.info("watching %s", self.deployer.folder)
        self._pass(everything=True)
        next_resync = time.monotonic() + self.resync
        while not self.stopping.is_set():
            wait_ms = (TICK_MS if self.wake is None
                       else max(0, int((next_resync - time.monotonic()) * 1000)))
            events = self._read(wait_ms)
            if events:
                while more := self._read(int(QUIET * 1000)):
                    events += more
                if any(e.mask & (flags.DELETE_SELF | flags.MOVE_SELF | flags.IGNORED)
                       for e in events):
                    self._watch()
            elif time.monotonic() < next_resync:
                continue
            if self.stopping.is_set():
                break
            self._pass()
            next_resync = time.monotonic() + self.resync
        log.info("stopped")


def resync_interval(argv: list[str]) -> float:
    """The seconds between passes the flags ``argv`` ask for (the ``manifests`` argument
    file: ``--resync-interval``); UsageError for a flag that is unknown or not positive."""
    ap = argparse.ArgumentParser(prog="microkube-manifests", add_help=False, exit_on_error=False)
    ap.add_argument("--resync-interval", type=float, default=RESYNC)
    try:
        opts, unknown = ap.parse_known_args(argv)
    except argparse.ArgumentError as e:
        raise UsageError(f"manifests arguments: {e}") from None
    if unknown:
        raise UsageError(f"manifests arguments: unknown {' '.join(unknown)}")
    if opts.resync_interval <= 0:
        raise UsageError("manifests arguments: --resync-interval must be positive")
    return float(opts.resync_interval)


class Background:
    """The deployer as a thread of a longer-lived process (the cluster agent).

    It waits for the admin kubeconfig, then runs a :class:`Watcher` until :meth:`stop`;
    when a run fails it is logged and started again after RESTART_FIRST seconds, doubled
    on each failure up to RESTART_MAX (as snapd or the supervisor would restart a daemon).
    Nothing it raises reaches the process that runs it. ``options`` gives the resync interval
    (s), read again at every (re)start; ``after_pass`` runs after each pass.
    """

    def __init__(self, paths: Paths, node_name: str, options: Callable[[], float],
                 after_pass: Callable[[], None] = lambda: None) -> None:
        self.paths = paths
        self.node_name = node_name
        self.options = options
        self.after_pass = after_pass
        self.stopping = threading.Event()
        self._wake_read, self._wake_write = os.pipe()  # written once, by stop()
        self.thread = threading.Thread(target=self._serve, name="manifests", daemon=True)

    def start(self) -> None:
        """Start the thread; returns at once."""
        self.thread.start()

    def stop(self, timeout: float) -> None:
        """Ask the loop to stop and wait for it at most ``timeout`` seconds (a kubectl or
        helm call under way is left to finish: the thread is a daemon thread)."""
        self.stopping.set()
        os.write(self._wake_write, b"\0")
        self.thread.join(timeout)

    def _serve(self) -> None:
        delay = RESTART_FIRST
        while not self.stopping.is_set():
            if not self.paths.kubeconfig("admin").exists():
                self.stopping.wait(GATE_WAIT)
                continue
            started = time.monotonic()
            try:
                Watcher(Deployer(self.paths, self.node_name), self.options(), self.stopping,
                        self.after_pass, self._wake_read).run()
                continue  # stopped on request
            except (MicrokubeError, OSError) as e:
                error, trace = str(e), False
            except Exception as e:
                error, trace = f"{type(e).__name__}: {e}", True
            if time.monotonic() - started >= RESTART_MAX:
                delay = RESTART_FIRST  # it ran a while: a new failure, not the same one again
            log.error("the deployer stopped: %s; restarting in %.0f s", error, delay,
                      exc_info=trace)
            self.stopping.wait(delay)
            delay = min(delay * 2, RESTART_MAX)
