"""Driving the node's daemons through snapd, inside the snap.

Each daemon is a snap app named ``daemon-<name>``; snapd runs, restarts and
stops them, and ``snapctl`` is how microkube asks it to.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from microkube.errors import MicrokubeError

SNAP_NAME_DEFAULT = "microkube"
# snapd gives up on a service command after 150 s (half its 5-minute configure-hook
# timeout) and says so; wait longer than that, so its own message is what the user reads.
SNAPCTL_TIMEOUT = 180.0


def app_name(daemon: str) -> str:
    return f"{os.environ.get('SNAP_INSTANCE_NAME') or os.environ.get('SNAP_NAME') or SNAP_NAME_DEFAULT}" \
           f".daemon-{daemon}"


def _snapctl(*args: str) -> str:
    """snapctl's stdout; raises MicrokubeError (one line) if it fails or does not answer."""
    try:
        proc = subprocess.run(["snapctl", *args], capture_output=True, text=True,
                              timeout=SNAPCTL_TIMEOUT)
    except FileNotFoundError:
        raise MicrokubeError("snapctl is not available; is microkube running as a snap?") from None
    except subprocess.TimeoutExpired:
        raise MicrokubeError(f"snapctl {args[0]}: no answer from snapd within "
                             f"{SNAPCTL_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        raise MicrokubeError(f"snapctl {args[0]}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def start(daemons: list[str]) -> None:
    _snapctl("start", "--enable", *(app_name(d) for d in daemons))


def stop(daemons: list[str]) -> None:
    _snapctl("stop", "--disable", *(app_name(d) for d in reversed(daemons)))


def restart(daemon: str) -> None:
    _snapctl("restart", app_name(daemon))


def active(daemons: list[str]) -> dict[str, bool]:
    """Which daemon apps snapd reports as active."""
    out = _snapctl("services", *(app_name(d) for d in daemons))
    states = {}
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 3:
            states[cols[0].rsplit(".daemon-", 1)[-1]] = cols[2] == "active"
    return {d: states.get(d, False) for d in daemons}


def get_option(key: str) -> Any:
    """The snap's option ``key`` (``snap set microkube key=...``): its value, or None if unset.

    Raises MicrokubeError if snapctl fails or does not answer in JSON.
    """
    try:
        out = _snapctl("get", "-d", key).strip()
    except MicrokubeError as e:
        if "configuration option" in str(e):  # snapd's word for an unset key
            return None
        raise
    try:
        doc = json.loads(out) if out else {}
    except ValueError:
        raise MicrokubeError(f"snapctl get {key}: not JSON: {out[:80]}") from None
    return doc.get(key) if isinstance(doc, dict) else None


def get_document(key: str) -> dict[str, Any]:
    """The snap's configuration below ``key`` (``snap set microkube key.x=...``); {} if unset."""
    value = get_option(key)
    return value if isinstance(value, dict) else {}
