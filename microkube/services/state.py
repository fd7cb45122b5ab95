"""The supervisor's published state: which daemons run, with which pid.

Written atomically by the supervisor whenever something changes; read by
``status`` and ``stop`` without talking to the supervisor.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from microkube.fsutil import write_atomic


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch; None if there is no such
    process or it is a zombie.

    psutil's ``create_time()`` on Linux (boot time from /proc/stat plus the start in clock
    ticks from /proc/PID/stat), read here so ``status`` need not import psutil.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    # The command name may hold spaces and parentheses: the fields follow the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


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
        try:
            raw = json.loads(path.read_text())
            raw["daemons"] = {k: DaemonState(**v) for k, v in raw.get("daemons", {}).items()}
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def alive(self) -> bool:
        """True if the recorded supervisor is this very process still running."""
        # A killed supervisor may linger as a zombie until its parent reaps it: not alive.
        started = process_start_time(self.pid)
        return started is not None and abs(started - self.create_time) < 0.5
