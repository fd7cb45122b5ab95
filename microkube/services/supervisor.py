"""The supervisor: runs the node's daemons outside a snap.

It starts each daemon once the daemons it needs are ready, runs each daemon's
one-shot after-start work in a child while the other daemons start, restarts a
daemon that exits (with exponential backoff), rotates the logs, and on
SIGTERM stops everything in reverse order, including the containers'
processes, which it adopts as a child subreaper.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

import psutil

from microkube.errors import MicrokubeError
from microkube.fsutil import hold_lock_for_life
from microkube.paths import Paths
from microkube.pki.expiry_summary import (
    certificate_stamps,
    changed_files,
    earliest_expiry_summary,
    next_renewal,
)
from microkube.services.base import Daemon, NodeContext
from microkube.services.certreaders import daemons_to_restart
from microkube.services.cleanup import unmount_below
from microkube.services.logs import open_log, rotate_if_large
from microkube.services.state import DaemonState, SupervisorState

PR_SET_CHILD_SUBREAPER = 36
TICK = 0.2
BACKOFF_MAX = 30.0
# A daemon that ran this long before it exited starts its backoff afresh.
STABLE_AFTER = 60.0
ROTATE_EVERY = 30.0
# How often a daemon waiting on its start condition checks it again.
GATE_RECHECK = 0.1
# Certificates are checked when the first leaf falls due (pki/lifetime.py), and at least
# this often (s) so a hand edit or a clock change is noticed.
CERT_CHECK_EVERY = 6 * 3600.0
# A failed renewal (a worker's control plane unreachable) is tried again after this many
# seconds, doubling up to CERT_RETRY_MAX.
CERT_RETRY = 10.0
CERT_RETRY_MAX = 900.0


@dataclass
class _Slot:
    daemon: Daemon
    state: DaemonState = field(default_factory=DaemonState)
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    ready_once: bool = False  # served, and its after_ready work finished
    # The child running the daemon's after_ready work: its pid and the read end of its pipe.
    after_ready: tuple[int, int] | None = None
    next_start: float = 0.0
    last_error: str = ""
    restart_requested: bool = False  # ended on purpose (to load new files): start again at once


class Supervisor:
    """Runs ``daemons`` for the node in ``ctx`` until SIGTERM or SIGINT.

    ``renew_certificates`` re-issues the node's leaf certificates that are due (a
    control plane from its CAs, a worker through a control plane's agent); the
    supervisor calls it, in a forked child, when the first leaf falls due
    (pki/lifetime.py), then restarts only the daemons that read a rewritten file
    (services/certreaders.py): containerd and the pods keep running.
    """

    def __init__(self, ctx: NodeContext, daemons: list[Daemon],
                 renew_certificates: Callable[[], None]) -> None:
        self.ctx = ctx
        self._renew_certificates = renew_certificates
        self.slots = {d.name: _Slot(d) for d in daemons}
        me = psutil.Process()
        self.state = SupervisorState(pid=me.pid, create_time=me.create_time(),
                                     started_at=time.time())
        self.state.daemons = {n: s.state for n, s in self.slots.items()}
        self._stop = False
        self._dirty = True
        self._cert_retry = CERT_RETRY

    # --- main loop -------------------------------------------------------------------
    def run(self) -> int:
        # Held for life: status sees a live supervisor from the lock alone (services/state.py).
        hold_lock_for_life(self.ctx.paths.supervisor_lock)
        self._become_subreaper()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        next_rotate = time.monotonic() + ROTATE_EVERY
        next_cert_check = time.monotonic()
        try:
            while not self._stop:
                self._tick()
                if time.monotonic() >= next_rotate:
                    self._rotate_logs()
                    next_rotate = time.monotonic() + ROTATE_EVERY
                if time.monotonic() >= next_cert_check:
                    next_cert_check = time.monotonic() + self._check_certificates()
                time.sleep(TICK if not self._all_ready() else 1.0)
        finally:
            self._shutdown()
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def _tick(self) -> None:
        now = time.monotonic()
        for slot in self.slots.values():
            if slot.after_ready is not None:
                self._after_ready_done(slot)
            if slot.proc is None:
                if self._deps_ready(slot) and now >= slot.next_start:
                    if slot.daemon.can_start(self.ctx):
                        self._start(slot)
                    else:
                        slot.next_start = now + GATE_RECHECK
            elif slot.proc.poll() is not None:
                self._exited(slot, now)
        # The readiness probes after every start: a probe may wait up to its timeout for a
        # daemon that accepts connections but does not serve yet (etcd completes no TLS
        # handshake before it has opened its data), and must not hold back a start.
        for slot in self.slots.values():
            if (slot.proc is not None and slot.state.state == "starting"
                    and slot.after_ready is None and slot.daemon.ready(self.ctx)):
                self._became_ready(slot)
        self._reap_adopted()
        if self._dirty:
            self.state.save(self.ctx.paths.supervisor_state)
            self._dirty = False

    def _all_ready(self) -> bool:
        return all(s.state.state == "ready" for s in self.slots.values())

    def _deps_ready(self, slot: _Slot) -> bool:
        """True once every daemon of ``slot``'s ``after`` became ready once (or, for one in
        its ``after_accepting``, runs and accepts connections now)."""
        accepting_enough = slot.daemon.after_accepting
        return all(self.slots[d].ready_once
                   or (d in accepting_enough and self._accepts(self.slots[d]))
                   for d in slot.daemon.after if d in self.slots)

    def _accepts(self, slot: _Slot) -> bool:
        """True if ``slot``'s process runs and its daemon accepts connections."""
        return slot.proc is not None and slot.proc.poll() is None and slot.daemon.accepts(self.ctx)

    # --- one daemon ------------------------------------------------------------------
    def _start(self, slot: _Slot) -> None:
        d = slot.daemon
        try:
            d.prepare(self.ctx)
            argv = d.command(self.ctx)
        except MicrokubeError as e:
            # A bad argument file: say so in the log and try again later.
            self._log_line(slot, f"cannot start {d.name}: {e}")
            self._backoff(slot, time.monotonic())
            return
        if slot.log is None:
            slot.log = open_log(self.ctx.paths.log_file(d.name))
        self._log_line(slot, f"starting {d.name}")
        slot.proc = subprocess.Popen(argv, env=d.environment(self.ctx), stdin=subprocess.DEVNULL,
                                     stdout=slot.log, stderr=subprocess.STDOUT,
                                     cwd=str(self.ctx.paths.run_dir))
        slot.state.pid = slot.proc.pid
        self._set(slot, "starting")

    def _became_ready(self, slot: _Slot) -> None:
        if not slot.ready_once:
            # The one-shot work runs in a child while the loop goes on starting the daemons
            # that need this one only to accept connections (after_accepting); ready once
            # it is done.
            slot.after_ready = start_forked(lambda: slot.daemon.after_ready(self.ctx))
            return
        self._mark_ready(slot)

    def _after_ready_done(self, slot: _Slot) -> None:
        """If ``slot``'s after_ready child ended: log its error, and the daemon is ready."""
        assert slot.after_ready is not None
        done, error = finish_forked(*slot.after_ready, wait=False)
        if not done:
            return
        slot.after_ready = None
        if error:
            self._log_line(slot, f"after start of {slot.daemon.name}: {error}")
        slot.ready_once = True
        if (slot.proc is not None and slot.proc.poll() is None
                and slot.state.state == "starting"):
            self._mark_ready(slot)

    def _mark_ready(self, slot: _Slot) -> None:
        self._set(slot, "ready")
        elapsed = time.time() - self.state.started_at
        print(f"{slot.daemon.name} ready {elapsed:.1f} s after the supervisor started", flush=True)

    def _exited(self, slot: _Slot, now: float) -> None:
        assert slot.proc is not None
        code = slot.proc.returncode
        self._log_line(slot, f"{slot.daemon.name} exited with {code}; restarting")
        ran = time.time() - slot.state.since
        slot.proc = None
        slot.state.pid = None
        if slot.restart_requested:
            # Not a failure: start it again now, without a backoff.
            slot.restart_requested = False
            slot.next_start = now
            self._set(slot, "waiting")
            return
        if ran > STABLE_AFTER:
            slot.state.restarts = 0
        self._backoff(slot, now)

    def _backoff(self, slot: _Slot, now: float) -> None:
        slot.state.restarts += 1
        slot.next_start = now + min(BACKOFF_MAX, 0.5 * 2 ** (slot.state.restarts - 1))
        self._set(slot, "backoff")

    def _set(self, slot: _Slot, state: str) -> None:
        slot.state.state = state
        slot.state.since = time.time()
        self._dirty = True

    def _log_line(self, slot: _Slot, message: str) -> None:
        if slot.log is None:
            slot.log = open_log(self.ctx.paths.log_file(slot.daemon.name))
        slot.log.write(f"microkube: {time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n".encode())
        slot.log.flush()

    def _rotate_logs(self) -> None:
        for name in self.slots:
            rotate_if_large(self.ctx.paths.log_file(name))

    # --- certificates -------------------------------------------------------------------
    def _check_certificates(self) -> float:
        """Renew the leaves that are due and restart the daemons that read them; record the
        earliest expiry. Returns the seconds until the next check.

        The expiry index answers without loading cryptography while no certificate file
        changed, and the renewal runs in a forked child, so an idle supervisor stays small
        (see pki/expiry_summary.py).
        """
        paths = self.ctx.paths
        wait = CERT_CHECK_EVERY
        # A child brings the index up to date (parsing certificates if one changed).
        run_forked(lambda: _refresh_index(paths))
        try:
            name, due_at = next_renewal(paths)
            if due_at is not None and due_at <= _utcnow():
                print(f"{name} is due for renewal: renewing the leaves that are due", flush=True)
                before = certificate_stamps(paths)
                error = run_forked(self._renew_certificates)
                self._restart_readers(changed_files(before, certificate_stamps(paths)))
                run_forked(lambda: _refresh_index(paths))
                name, due_at = next_renewal(paths)
                if error or (due_at is not None and due_at <= _utcnow()):
                    print(f"certificate renewal failed: {error or name + ' is still due'}; "
                          f"trying again in {self._cert_retry:.0f} s", flush=True)
                    wait, self._cert_retry = self._cert_retry, min(CERT_RETRY_MAX,
                                                                   self._cert_retry * 2)
                else:
                    self._cert_retry = CERT_RETRY
            if due_at is not None and wait == CERT_CHECK_EVERY:
                wait = min(wait, max(1.0, (due_at - _utcnow()).total_seconds() + 1.0))
            earliest, days_left = earliest_expiry_summary(paths)
        except MicrokubeError as e:
            print(f"certificate check failed: {e}", flush=True)
            return self._cert_retry
        if days_left is not None:
            self.state.cert_earliest = earliest
            self.state.cert_days_left = days_left
            self._dirty = True
        return wait

    def _restart_readers(self, changed: list[str]) -> None:
        """Restart the daemons that read one of the ``changed`` files; each reads its
        certificates at start, and the loop starts it again at once."""
        if not changed:
            return
        restart = daemons_to_restart(changed, list(self.slots))
        print(f"renewed {', '.join(changed)}; restarting "
              f"{', '.join(restart) or 'nothing (every reader reloads on its own)'}", flush=True)
        for name in restart:
            slot = self.slots[name]
            if slot.proc is not None and slot.proc.poll() is None:
                self._log_line(slot, f"restarting {name} to load {', '.join(restart[name])}")
                slot.restart_requested = True
                slot.proc.terminate()

    # --- adopted processes (containerd shims and containers) -------------------------
    def _become_subreaper(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    def _managed_pids(self) -> set[int]:
        return {s.proc.pid for s in self.slots.values() if s.proc is not None}

    def _reap_adopted(self) -> None:
        # after_ready children are waited for by _after_ready_done, which needs their status.
        managed = self._managed_pids() | {s.after_ready[0] for s in self.slots.values()
                                          if s.after_ready is not None}
        for child in psutil.Process().children():
            if child.pid in managed:
                continue
            with contextlib.suppress(ChildProcessError, psutil.Error):
                if child.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(child.pid, os.WNOHANG)

    # --- shutdown --------------------------------------------------------------------
    def _shutdown(self) -> None:
        self.state.stopping = True
        self.state.save(self.ctx.paths.supervisor_state)
        for slot in self.slots.values():  # one-shot work still running: no longer wanted
            if slot.after_ready is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.after_ready[0], signal.SIGKILL)
                finish_forked(*slot.after_ready, wait=True)
                slot.after_ready = None
        order = list(reversed(self.slots.values()))
        # Kubernetes first, all at once; then the pods' processes; then the runtime and datastore.
        last = [s for s in order if s.daemon.name in ("containerd", "etcd", "kine")]
        self._stop_slots([s for s in order if s not in last])
        self._kill_adopted()
        for slot in last:
            self._stop_slots([slot])
        for slot in order:
            with contextlib.suppress(Exception):
                slot.daemon.cleanup(self.ctx)
        unmount_below(self.ctx.paths.containerd_state)
        unmount_below(self.ctx.paths.common)
        with contextlib.suppress(FileNotFoundError):
            self.ctx.paths.supervisor_state.unlink()

    def _stop_slots(self, slots: list[_Slot]) -> None:
        running = [s for s in slots if s.proc is not None and s.proc.poll() is None]
        for s in running:
            assert s.proc is not None
            self._log_line(s, f"stopping {s.daemon.name}")
            s.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + max((s.daemon.stop_timeout for s in running), default=0)
        for s in running:
            assert s.proc is not None
            try:
                s.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()
            s.state.state, s.state.pid = "stopped", None

    def _kill_adopted(self) -> None:
        managed = self._managed_pids()
        for _ in range(50):
            others = [c for c in psutil.Process().children(recursive=True)
                      if c.pid not in managed and not _descends_from(c, managed)]
            if not others:
                return
            for c in others:
                with contextlib.suppress(psutil.Error):
                    c.kill()
            time.sleep(0.1)
            self._reap_adopted()


def run_forked(work: Callable[[], None]) -> str | None:
    """Run ``work`` in a forked child and wait for it; None if it succeeded, else why not.

    One-shot work (a daemon's after_ready: rendering manifests, kubectl, image imports)
    loads libraries the supervisor never needs again; they leave with the child, so the
    supervisor stays small for the node's lifetime. ``work``'s effects must be on disk or
    in the cluster: changes to this process's memory are lost. Returns the message of a
    MicrokubeError, or the type and message of any other exception, raised by ``work``.
    """
    return finish_forked(*start_forked(work), wait=True)[1]


def start_forked(work: Callable[[], None]) -> tuple[int, int]:
    """Start ``work`` in a forked child, as run_forked does, without waiting for it; returns
    the child's pid and the read end of the pipe it reports on, for finish_forked."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, flush and leave without running the parent's cleanup
        os.close(read_end)
        code = 0
        try:
            work()
        except MicrokubeError as e:
            os.write(write_end, str(e).encode())
            code = 1
        except BaseException as e:  # reported to the parent, which carries on
            os.write(write_end, f"{type(e).__name__}: {e}".encode())
            code = 2
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def finish_forked(pid: int, read_end: int, *, wait: bool) -> tuple[bool, str | None]:
    """The outcome of a child from start_forked: (False, None) while it runs (only with
    ``wait`` False), else (True, None if ``work`` succeeded, else why not). Closes
    ``read_end`` once the child has ended."""
    done_pid, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
    if done_pid == 0:
        return False, None
    # The child has exited, so its end of the pipe is closed: this read ends.
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace").strip()
    code = os.waitstatus_to_exitcode(status)
    return True, None if code == 0 else (message or f"exited with {code}")


def _refresh_index(paths: Paths) -> None:
    next_renewal(paths)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _descends_from(proc: psutil.Process, pids: set[int]) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(p.pid in pids for p in proc.parents())
    return False
