"""Rotating the Secrets encryption key without losing a Secret, resumably.

The stages follow k3s's ``secrets-encrypt``:

1. ``prepare``: the new key joins the configuration as a read key (the old one
   still encrypts), and the API server restarts: every API server can now read
   what the new key will write.
2. ``rotate``: the new key moves first, so it encrypts; the API server restarts.
3. ``reencrypt``: every Secret is read and written back, so it is stored under
   the new key; then the datastore is checked: each Secret must carry it.
4. ``retire``: the old keys leave the configuration; the API server restarts.

The stage about to run is saved atomically before its work starts, and each
stage's work is idempotent, so a rotation stopped anywhere (a crash, a node
stop) finishes correctly when ``rotate-keys`` runs again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from microkube.datastore import encryption
from microkube.datastore.encryption import Key
from microkube.errors import MicrokubeError, UsageError
from microkube.fsutil import write_atomic

STAGES = ("prepare", "rotate", "reencrypt", "retire")
IDLE = "start"  # k3s's word for "no rotation under way"


@dataclass(frozen=True)
class RotationState:
    """A rotation under way: the stage to run next and the name of the key being brought in."""

    stage: str
    new_key: str


def load_state(path: Path) -> RotationState | None:
    """The saved rotation, or None if none is under way. UsageError for a damaged file."""
    try:
        raw = json.loads(path.read_text())
        state = RotationState(str(raw["stage"]), str(raw["new_key"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path}: damaged rotation state; remove it and run "
                         "'microkube secrets-encryption rotate-keys' again") from None
    if state.stage not in STAGES:
        raise UsageError(f"{path}: unknown rotation stage '{state.stage}'")
    return state


def save_state(path: Path, state: RotationState | None) -> None:
    """Record the stage about to run atomically (None: the rotation is over)."""
    if state is None:
        path.unlink(missing_ok=True)
    else:
        write_atomic(path, json.dumps({"stage": state.stage, "new_key": state.new_key}) + "\n")


@dataclass
class Rotation:
    """One rotation of the node's key, driven by the actions it is given.

    ``restart_api_server()`` restarts the API server and returns once it serves;
    ``reencrypt()`` reads every Secret and writes it back; ``unconverted(prefix)``
    returns the datastore keys of Secrets whose stored value does not start with
    ``prefix`` (bytes). Each may raise MicrokubeError, which leaves the saved stage
    where it was.
    """

    config: Path
    state_file: Path
    restart_api_server: Callable[[], None]
    reencrypt: Callable[[], None]
    unconverted: Callable[[bytes], list[str]]
    say: Callable[[str], None]
    attempts: int = 3

    def run(self) -> str:
        """Carry the rotation through every stage left; the name of the key now in use."""
        state = load_state(self.state_file)
        keys = encryption.read_keys(self.config)
        if state is None:
            state = RotationState("prepare", encryption.new_key().name)
            if state.new_key in {k.name for k in keys}:
                raise MicrokubeError(f"a key named {state.new_key} exists already; "
                                     "wait a second and try again")
            save_state(self.state_file, state)
        else:
            self.say(f"resuming the key rotation at stage '{state.stage}'")
        for stage in STAGES[STAGES.index(state.stage):]:
            save_state(self.state_file, RotationState(stage, state.new_key))
            getattr(self, f"_{stage}")(state.new_key)
        save_state(self.state_file, None)
        return state.new_key

    def _write(self, keys: list[Key]) -> None:
        encryption.write_keys(self.config, keys)

    def _new(self, name: str, keys: list[Key]) -> Key:
        for k in keys:
            if k.name == name:
                return k
        raise MicrokubeError(f"{self.config}: key {name} of the rotation under way is gone; "
                             f"restore the file from a backup")

    def _prepare(self, name: str) -> None:
        keys = encryption.read_keys(self.config)
        if name not in {k.name for k in keys}:
            fresh = encryption.new_key()
            keys.append(Key(name, fresh.secret))
        new = self._new(name, keys)
        self._write([k for k in keys if k.name != name] + [new])
        self.say(f"added key {name} for reading; restarting the API server")
        self.restart_api_server()

    def _rotate(self, name: str) -> None:
        keys = encryption.read_keys(self.config)
        new = self._new(name, keys)
        self._write([new] + [k for k in keys if k.name != name])
        self.say(f"key {name} now encrypts; restarting the API server")
        self.restart_api_server()

    def _reencrypt(self, name: str) -> None:
        prefix = encryption.ciphertext_prefix(name)
        for attempt in range(1, self.attempts + 1):
            self.say("re-encrypting every Secret" + (f" (try {attempt})" if attempt > 1 else ""))
            try:
                self.reencrypt()
            except MicrokubeError as e:
                # A Secret changed between the read and the write-back: read again.
                if attempt == self.attempts:
                    raise
                self.say(f"  {e}; trying again")
                continue
            left = self.unconverted(prefix)
            if not left:
                return
            if attempt == self.attempts:
                raise MicrokubeError(f"{len(left)} Secret(s) still not under key {name} "
                                     f"(e.g. {left[0]}); the old key is kept, run "
                                     "'microkube secrets-encryption rotate-keys' again")

    def _retire(self, name: str) -> None:
        keys = encryption.read_keys(self.config)
        old = [k.name for k in keys if k.name != name]
        self._write([self._new(name, keys)])
        self.say(f"retired {', '.join(old) or 'no key'}; restarting the API server")
        self.restart_api_server()


def stage(state_file: Path) -> str:
    """The stage a rotation is at, in k3s's words: ``start`` when none is under way."""
    state = load_state(state_file)
    return IDLE if state is None else state.stage
