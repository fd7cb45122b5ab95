"""The supervisor's published state: which daemons run, with which pid.

Written atomically by the supervisor whenever something changes; read by
``status`` and ``stop`` without talking to the supervisor.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from microkube.fsutil import is_locked, write_atomic


@dataclass
class DaemonState:
    state: str = "waiting"  # waiting, starting, ready, backoff, stopped
    pid: int | None = None
    restarts: int = 0
    since: float = 0.0


@dataclass
class SupervisorState:
    pid: int
    create_time: float
    started_at: float
    stopping: bool = False
    daemons: dict[str, DaemonState] = field(default_factory=dict)
    # The certificate that expires first, and in how many days (checked every few hours).
    cert_earliest: str = ""
    cert_days_left: int | None = None

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> SupervisorState | None:
        """The state in ``path``; None when there is none or it is damaged (not JSON, or not
        the shape :meth:`save` writes), as for a supervisor that is not running."""
        try:
            raw = json.loads(path.read_text())
            raw["daemons"] = {k: DaemonState(**v) for k, v in raw.get("daemons", {}).items()}
            state = cls(**raw)
        except (OSError, ValueError, TypeError, AttributeError):  # damaged: as if none
            return None
        if not isinstance(state.pid, int) or not isinstance(state.create_time, (int, float)):
            return None
        return state

    def alive(self, lock: Path | None = None) -> bool:
        """True if the recorded supervisor is this very process still running.

        ``lock`` (Paths.supervisor_lock) answers without psutil, whose import costs status
        more than the rest of this check, while a supervisor holds it; else the recorded
        pid and start time are compared with the process's (psutil).
        """
        if lock is not None and is_locked(lock):
            return True
        import psutil  # here, not at the top: most of status never needs it

        try:
            proc = psutil.Process(self.pid)
            # A killed supervisor may linger as a zombie until its parent reaps it.
            return (abs(proc.create_time() - self.create_time) < 0.5
                    and proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False
