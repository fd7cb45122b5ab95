"""The deployer's daemon: a pass at start, then one whenever the folder changes.

The folder is watched with inotify (``inotify_simple``): a file written and
closed, moved in or out, or deleted starts a pass after a short quiet time
(so a burst of writes is one pass). Every ``--resync-interval`` seconds a pass runs anyway:
it retries files that failed (say, a custom resource whose CRD arrived since)
and catches a chart archive changed outside the folder.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from types import FrameType

from inotify_simple import INotify, flags

from microkube.config import node
from microkube.errors import report_errors
from microkube.manifests.deployer import Deployer
from microkube.paths import Paths
from microkube.proc import stop_with_parent

RESYNC = 30.0  # seconds between passes when nothing changes (--resync-interval)
QUIET = 0.1  # seconds without events before a pass starts
TICK_MS = 1000  # how long one wait for events lasts, so a stop is seen within a second
WATCHED = (flags.CLOSE_WRITE | flags.MOVED_TO | flags.MOVED_FROM | flags.DELETE
           | flags.DELETE_SELF | flags.MOVE_SELF)
log = logging.getLogger("microkube.manifests")


class Watcher:
    """Runs ``deployer`` at start and on every change of its folder until :meth:`stop`."""

    def __init__(self, deployer: Deployer, resync: float = RESYNC) -> None:
        self.deployer = deployer
        self.resync = resync  # seconds
        self.inotify = INotify()
        self.watch = -1
        self.stopping = False

    def stop(self, *_: object) -> None:
        self.stopping = True

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
        self._watch()
        log.info("watching %s", self.deployer.folder)
        self.deployer.sync(everything=True)
        self.launch_addons()
        next_resync = time.monotonic() + self.resync
        while not self.stopping:
            events = self.inotify.read(timeout=TICK_MS)
            if events:
                while more := self.inotify.read(timeout=int(QUIET * 1000)):
                    events += more
                if any(e.mask & (flags.DELETE_SELF | flags.MOVE_SELF | flags.IGNORED)
                       for e in events):
                    self._watch()
            elif time.monotonic() < next_resync:
                continue
            if self.stopping:
                break
            self.deployer.sync()
            self.launch_addons()
            next_resync = time.monotonic() + self.resync
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m microkube.manifests``: serve until SIGTERM or SIGINT."""
    ap = argparse.ArgumentParser(prog="microkube-manifests",
                                 description="Apply the deploy folder's manifests and charts.")
    ap.add_argument("--resync-interval", type=float, default=RESYNC,
                    help="seconds between passes when nothing changes")
    opts = ap.parse_args(argv)
    if opts.resync_interval <= 0:
        ap.error("--resync-interval must be positive")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    def serve() -> None:
        stop_with_parent()
        paths = Paths.from_env()
        watcher = Watcher(Deployer(paths, node.load(paths.state_file).node_name),
                          opts.resync_interval)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            watcher.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        watcher.run()

    return report_errors(serve)
