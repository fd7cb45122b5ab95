"""Backup and restore of a ``sqlite`` node's kine database.

A backup is SQLite's online backup API (Python's sqlite3) run against the live
file: one consistent copy even while kine writes (kine keeps the file in WAL
mode; the copy is taken under one read transaction). A restore checks the copy
is a sound kine database before the stopped node's file (and its WAL) is swapped.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from microkube.datastore.archive import BackupFileError
from microkube.errors import MicrokubeError

# The columns kine's table has had since its first schema (kine pkg/drivers/sqlite).
KINE_COLUMNS = {"id", "name", "created", "deleted", "create_revision", "prev_revision",
                "lease", "value", "old_value"}
_SIDE_FILES = ("-wal", "-shm", "-journal")


def save(db: Path, dest: Path) -> dict[str, Any]:
    """Copy the live database ``db`` into ``dest`` consistently; its facts (see facts()).

    Raises MicrokubeError if the database cannot be read.
    """
    if not db.exists():
        raise MicrokubeError(f"{db}: missing; has this node's kine ever started?")
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as src, \
                closing(sqlite3.connect(dest)) as out:
            src.backup(out)
    except sqlite3.Error as e:
        raise MicrokubeError(f"{db}: backing up the datastore failed: {e}") from None
    dest.chmod(0o600)
    return facts(dest, str(dest))


def facts(db: Path, source: str) -> dict[str, Any]:
    """Check ``db`` is a sound kine database: {revision, total_keys, version}.

    Raises BackupFileError (one line naming ``source``) for a damaged or foreign file.
    """
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            check = conn.execute("PRAGMA integrity_check").fetchone()
            if not check or check[0] != "ok":
                raise BackupFileError(f"{source}: the SQLite database is damaged ({check})")
            cols = {row[1] for row in conn.execute("PRAGMA table_info(kine)")}
            if not cols >= KINE_COLUMNS:
                raise BackupFileError(f"{source}: not a kine database (no kine table)")
            revision = conn.execute("SELECT COALESCE(MAX(id), 0) FROM kine").fetchone()[0]
            live = conn.execute(
                "SELECT COUNT(*) FROM kine AS kv JOIN (SELECT MAX(id) AS id FROM kine "
                "GROUP BY name) AS latest USING (id) WHERE kv.deleted = 0").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise BackupFileError(f"{source}: not a sound SQLite database ({e})") from None
    return {"revision": int(revision), "total_keys": int(live), "version": sqlite3.sqlite_version}


def install(copy: Path, db: Path) -> None:
    """Make the checked ``copy`` the (stopped) node's database ``db``.

    The old file and its WAL move aside first and go only once the copy is in place;
    a stale WAL beside the new file would be replayed into it.
    """
    db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = db.with_name(db.name + ".restoring")
    shutil.copyfile(copy, staged)
    staged.chmod(0o600)
    aside = db.parent / ".before-restore"
    shutil.rmtree(aside, ignore_errors=True)
    aside.mkdir(mode=0o700)
    for path in (db, *(db.with_name(db.name + s) for s in _SIDE_FILES)):
        if path.exists():
            path.rename(aside / path.name)
    staged.rename(db)
    shutil.rmtree(aside, ignore_errors=True)
