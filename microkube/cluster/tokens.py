"""Join tokens: made by ``add-node``, reserved, spent or released by the cluster agent.

The token file (``credentials/cluster-tokens.json``, 0600, written atomically)
holds only each token's SHA-256, never the token. A lookup hashes the
presented token and compares it with every stored hash with
``hmac.compare_digest``, so the time taken says nothing about how close a
guess was.

A token's life: issued -> reserved while a join runs -> admitted once the
cluster gave the joiner something (signed certificates: its kubelet may then
register a Node) -> consumed when the join completes, or released (issued
again) when it fails, so a failed join never burns the token. A reservation
lapses at the deadline the joiner asked for (at most ``RESERVATION_SECONDS``)
so a joiner that died does not hold it forever, and the same joiner (same name
and address) may take its own reservation again to retry. A lapsed admission
is undone by the agent (cluster/pending.py) before anyone else may use the
token. Spent and expired
tokens are remembered for a day so a retry is told why, not just "invalid".
Every change happens under an exclusive lock on a file beside the store,
because ``add-node`` and the agent write it from different processes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from microkube.cluster import DEFAULT_TOKEN_TTL
from microkube.errors import MicrokubeError, UsageError
from microkube.fsutil import write_private

DEFAULT_TTL = DEFAULT_TOKEN_TTL
MAX_TTL = 30 * 24 * 3600
# How long one join may hold its token before another joiner may take it.
RESERVATION_SECONDS = 600.0
# How long a spent or expired token is remembered, to tell a retry what happened.
REMEMBER_SECONDS = 24 * 3600.0
TOKEN_LENGTH = 32
MAX_TOKEN_LENGTH = 128
# URL-safe characters only: the token sits between '/' in the join string.
TOKEN_PATTERN = re.compile(rf"^[A-Za-z0-9_-]{{{TOKEN_LENGTH},{MAX_TOKEN_LENGTH}}}$")
FILE_VERSION = 1


def new_token() -> str:
    """A fresh random token: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(TOKEN_LENGTH * 3 // 4)


def check_token_format(token: str) -> str:
    """``token`` if it is 32-128 URL-safe characters; UsageError saying what is wrong."""
    if TOKEN_PATTERN.match(token):
        return token
    if not TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
        raise UsageError(f"a token must be {TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} characters long, "
                         f"not {len(token)}")
    raise UsageError("a token may hold only letters, digits, '-' and '_'")


def check_ttl(seconds: int) -> int:
    """``seconds`` if it is a usable token lifetime (1 s to 30 days); UsageError otherwise."""
    if not 0 < seconds <= MAX_TTL:
        raise UsageError(f"--token-ttl must be between 1 and {MAX_TTL} seconds, not {seconds}")
    return seconds


def token_hash(token: str) -> str:
    """The stored form of ``token``: its SHA-256 as 64 hex digits."""
    return hashlib.sha256(token.encode()).hexdigest()


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- refusals: each says what happened and what to do -------------------------------


class TokenRefused(MicrokubeError):
    """The token cannot be used now; ``status`` is the HTTP status the agent answers with."""

    status = 401


class UnknownToken(TokenRefused):
    def __init__(self) -> None:
        super().__init__("this node does not know the token; check the join string, "
                         "or make a new one with 'microkube add-node'")


class ExpiredToken(TokenRefused):
    def __init__(self, expired_at: float) -> None:
        super().__init__(f"the token expired at {_when(expired_at)}; "
                         "make a new one with 'microkube add-node'")


class UsedToken(TokenRefused):
    status = 409

    def __init__(self, node: str) -> None:
        super().__init__(f"the token was already used to join node '{node}'; "
                         "make a new one with 'microkube add-node'")


class TokenInUse(TokenRefused):
    status = 409

    def __init__(self, holder: Holder, seconds_left: float) -> None:
        super().__init__(f"the token is held by a join of node '{holder.name}' ({holder.ip}) "
                         f"that is still running; retry in {max(1, round(seconds_left))} s "
                         "or use another token")


class JoinBeingUndone(TokenRefused):
    status = 409

    def __init__(self, holder: Holder) -> None:
        super().__init__(f"the token's earlier join of node '{holder.name}' ({holder.ip}) did "
                         "not complete and is being undone; retry in a few seconds")


class JoinLapsed(TokenRefused):
    status = 409

    def __init__(self) -> None:
        super().__init__("the join's deadline passed before it completed, so the cluster undid "
                         "it; run the join again with the same join string")


class JoinRunning(TokenRefused):
    status = 409

    def __init__(self, holder: Holder) -> None:
        super().__init__(f"another join of node '{holder.name}' ({holder.ip}) is running with "
                         "another token; wait until it completes or fails")


class TokenStoreError(MicrokubeError):
    """The token file cannot be read or written: a fault of this node, not of the joiner."""


# --- records ------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """Who holds a reservation: the joining node's name and address."""

    name: str
    ip: str


@dataclass(frozen=True)
class TokenRecord:
    """One token as stored: its hash, expiry (epoch seconds) and where it stands."""

    hash: str
    expires: float
    reserved_by: Holder | None = None
    reserved_until: float | None = None
    consumed_by: str | None = None
    consumed_at: float | None = None
    # When ``reserved_by`` was admitted (given certificates): from then on a failure must be undone.
    admitted_at: float | None = None

    def lapsed_admission(self, now: float) -> bool:
        """True when a holder was admitted, did not complete, and its reservation lapsed."""
        return self.admitted_at is not None and self.consumed_by is None \
            and self.reserved_at(now) is None

    def reserved_at(self, now: float) -> Holder | None:
        """The holder of a reservation that has not lapsed at ``now``, if any."""
        if self.reserved_by is not None and self.reserved_until is not None \
                and now < self.reserved_until:
            return self.reserved_by
        return None

    def forgettable(self, now: float) -> bool:
        """True once nobody needs to be told about this token any more."""
        ended = self.consumed_at if self.consumed_at is not None else self.expires
        return now > ended + REMEMBER_SECONDS and self.reserved_at(now) is None \
            and self.admitted_at is None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any) -> TokenRecord:
        """Raises TokenStoreError for anything that is not a record this module wrote."""
        try:
            holder = raw.get("reserved_by")
            return cls(
                hash=str(raw["hash"]),
                expires=float(raw["expires"]),
                reserved_by=None if holder is None else Holder(str(holder["name"]),
                                                               str(holder["ip"])),
                reserved_until=_opt_float(raw.get("reserved_until")),
                consumed_by=None if raw.get("consumed_by") is None else str(raw["consumed_by"]),
                consumed_at=_opt_float(raw.get("consumed_at")),
                admitted_at=_opt_float(raw.get("admitted_at")),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise TokenStoreError(f"a token record is damaged ({type(e).__name__})") from None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


# --- the store ------------------------------------------------------------------------


class TokenStore:
    """The join tokens of this node, in ``path``; ``clock`` gives epoch seconds.

    Every method reads and writes the file under the store's lock, so
    ``add-node`` and the agent may use it at once. Methods that take a token
    raise a TokenRefused subclass when it cannot be used, TokenStoreError when
    the file is damaged.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock

    # --- what add-node does ---------------------------------------------------------
    def add(self, token: str, ttl: int) -> TokenRecord:
        """Store ``token`` (checked first) valid for ``ttl`` seconds; returns its record.

        Raises UsageError for a malformed token or lifetime, or a token already stored.
        """
        check_token_format(token)
        check_ttl(ttl)
        with self._locked() as records:
            if self._find(records, token) is not None:
                raise UsageError("that token already exists; choose another one")
            record = TokenRecord(hash=token_hash(token), expires=self.clock() + ttl)
            records.append(record)
            return record

    # --- what the agent does ----------------------------------------------------------
    def check(self, token: str, holder: Holder | None = None) -> TokenRecord:
        """The record of ``token`` if ``holder`` could reserve it now; changes nothing."""
        return self._usable(self._read(), token, holder)[1]

    def reserve(self, token: str, holder: Holder,
                seconds: float = RESERVATION_SECONDS) -> TokenRecord:
        """Hold ``token`` for ``holder``'s join for ``seconds``; returns the new record.

        The same holder may reserve again (a retry after its joiner died); an
        admission of its earlier try is kept, for the agent to undo.
        """
        with self._locked() as records:
            index, record = self._usable(records, token, holder)
            record = replace(record, reserved_by=holder, reserved_until=self.clock() + seconds)
            records[index] = record
            return record

    def hold(self, token: str, holder: Holder) -> TokenRecord:
        """``token``'s record once ``holder`` holds it: its live reservation unchanged, else a new
        one of ``RESERVATION_SECONDS``. Refusals as for :meth:`reserve`."""
        with self._locked() as records:
            index, record = self._usable(records, token, holder)
            if record.reserved_at(self.clock()) != holder:
                record = replace(record, reserved_by=holder,
                                 reserved_until=self.clock() + RESERVATION_SECONDS)
                records[index] = record
            return record

    def admit(self, token: str, holder: Holder) -> TokenRecord:
        """Record that ``holder``, holding ``token``, is being given what makes it a member.

        Raises JoinRunning when another token's join of the same name or address
        is admitted and not yet completed or undone, so two joins never race for
        one name; other refusals as for :meth:`reserve`.
        """
        with self._locked() as records:
            index, record = self._usable(records, token, holder)
            now = self.clock()
            for other in records:
                if other.hash != record.hash and other.admitted_at is not None \
                        and other.consumed_by is None and other.reserved_by is not None \
                        and (other.reserved_by.name == holder.name
                             or other.reserved_by.ip == holder.ip):
                    raise JoinRunning(other.reserved_by)
            until = record.reserved_until if record.reserved_at(now) == holder \
                else now + RESERVATION_SECONDS
            record = replace(record, reserved_by=holder, reserved_until=until, admitted_at=now)
            records[index] = record
            return record

    def reservation(self, token: str) -> TokenRecord | None:
        """``token``'s record while it is reserved (its reservation live), else None; changes
        nothing. Raises UnknownToken."""
        record = self._lookup(self._read(), token)[1]
        return record if record.reserved_at(self.clock()) is not None else None

    def lapsed_admissions(self) -> list[TokenRecord]:
        """Records whose admitted holder neither completed nor released before its deadline."""
        now = self.clock()
        return [r for r in self._read() if r.lapsed_admission(now)]

    def forget_admission(self, record: TokenRecord) -> bool:
        """Make ``record``'s token usable again once its failed admission was undone.

        Changes nothing (returns False) if the record changed since it was read:
        its holder came back and is retrying.
        """
        with self._locked() as records:
            for i, current in enumerate(records):
                if current == record:
                    records[i] = replace(current, reserved_by=None, reserved_until=None,
                                         admitted_at=None)
                    return True
            return False

    def consume(self, token: str, holder: Holder) -> TokenRecord:
        """Spend ``token``: ``holder``'s join completed. It is never usable again.

        A reservation by ``holder`` keeps the token usable past its expiry, so a
        join that started in time may finish. Raises JoinLapsed for an admitted
        join whose reservation lapsed: the agent undoes it.
        """
        with self._locked() as records:
            now = self.clock()
            index, record = self._lookup(records, token)
            if record.admitted_at is not None and record.consumed_by is None \
                    and record.reserved_at(now) != holder:
                raise JoinLapsed()
            if record.reserved_at(now) != holder:
                index, record = self._usable(records, token, holder)
            record = replace(record, reserved_by=None, reserved_until=None, admitted_at=None,
                             consumed_by=holder.name, consumed_at=now)
            records[index] = record
            return record

    def release(self, token: str) -> bool:
        """End the reservation of ``token``: its join failed, and it is usable again.

        The caller undoes an admission first (see :meth:`reservation`). Returns
        False if it was not reserved. Raises TokenRefused for an unknown token.
        """
        with self._locked() as records:
            index, record = self._lookup(records, token)
            if record.reserved_at(self.clock()) is None:
                return False
            records[index] = replace(record, reserved_by=None, reserved_until=None,
                                     admitted_at=None)
            return True

    @contextlib.contextmanager
    def joining(self, token: str, holder: Holder) -> Iterator[TokenRecord]:
        """Reserve ``token`` for the block: consumed if it completes, released if it raises."""
        record = self.reserve(token, holder)
        try:
            yield record
        except BaseException:
            with contextlib.suppress(MicrokubeError):
                self.release(token)
            raise
        self.consume(token, holder)

    # --- lookup ------------------------------------------------------------------------
    @staticmethod
    def _find(records: list[TokenRecord], token: str) -> int | None:
        """The index of ``token``'s record; every hash is compared, in constant time."""
        wanted = token_hash(token)
        found = None
        for i, record in enumerate(records):
            if hmac.compare_digest(record.hash, wanted):
                found = i
        return found

    def _lookup(self, records: list[TokenRecord], token: str) -> tuple[int, TokenRecord]:
        index = self._find(records, token)
        if index is None:
            raise UnknownToken()
        return index, records[index]

    def _usable(self, records: list[TokenRecord], token: str,
                holder: Holder | None) -> tuple[int, TokenRecord]:
        index, record = self._lookup(records, token)
        now = self.clock()
        if record.consumed_by is not None:
            raise UsedToken(record.consumed_by)
        held_by = record.reserved_at(now)
        if held_by is None and record.lapsed_admission(now) and record.reserved_by != holder:
            assert record.reserved_by is not None
            raise JoinBeingUndone(record.reserved_by)
        if held_by is not None and held_by != holder:
            assert record.reserved_until is not None
            raise TokenInUse(held_by, record.reserved_until - now)
        if held_by is None and now >= record.expires:
            raise ExpiredToken(record.expires)
        return index, record

    # --- the file ------------------------------------------------------------------------
    def _read(self) -> list[TokenRecord]:
        try:
            text = self.path.read_bytes()  # bytes that are no UTF-8: "not valid JSON" below
        except FileNotFoundError:
            return []
        except OSError as e:
            raise TokenStoreError(f"{self.path}: {e.strerror}") from None
        try:
            doc = json.loads(text)
        except ValueError:
            raise TokenStoreError(f"{self.path}: not valid JSON; remove it to discard "
                                  "every join token") from None
        if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION \
                or not isinstance(doc.get("tokens"), list):
            raise TokenStoreError(f"{self.path}: not a token file of this microkube; remove it "
                                  "to discard every join token")
        return [TokenRecord.from_json(r) for r in doc["tokens"]]

    def _write(self, records: list[TokenRecord]) -> None:
        now = self.clock()
        keep = [r.to_json() for r in records if not r.forgettable(now)]
        write_private(self.path, json.dumps({"version": FILE_VERSION, "tokens": keep},
                                            indent=1) + "\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[TokenRecord]]:
        """The records, under the lock; written back if the block ends without error."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path.with_name(f".{self.path.name}.lock"),
                         os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise TokenStoreError(f"{self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            records = self._read()
            yield records
            self._write(records)
        finally:
            os.close(fd)
