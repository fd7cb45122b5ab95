"""The datastore setting: parsed and masked, set by a launch file before the first start,
checked before anything is written, never changed later; kine's logs read; SQLite copies."""

from __future__ import annotations

import socket
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from microkube.config import node
from microkube.datastore import kine, preflight, settings, sqlite_backup
from microkube.datastore.archive import BackupFileError
from microkube.errors import UsageError
from microkube.node.launch import first_start
from microkube.paths import Paths


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")


@pytest.mark.parametrize(("value", "kind"), [
    ("etcd", "etcd"), ("sqlite", "sqlite"),
    ("postgres://k:pw@db.example:5432/kine?sslmode=disable", "postgres"),
    ("postgresql://k:pw@10.0.0.5/kine", "postgres"),
    ("mysql://k:pw@10.0.0.5:3306/kine", "mysql"),
    ("mysql://k:pw@tcp(10.0.0.5:3306)/kine", "mysql"),
    (["https://10.0.0.1:2379", "https://10.0.0.2:2379"], "external-etcd"),
])
def test_each_kind_is_recognised(value: str | list[str], kind: str) -> None:
    assert settings.parse(value).kind == kind


@pytest.mark.parametrize(("value", "why"), [
    ("mongodb://h/db", "is not etcd, sqlite"),
    ("postgres:///kine", "names no host"),
    ("postgres://k:pw@h:5432", "names no database"),
    ("postgres://k:pw@h:port/db", "not a port number"),
    ("https://a:99999", "not a port number"),
    (["https://a:2379", "postgres://h/db"], "one etcd cluster"),
    ("https://u:pw@a:2379", "takes no user"),
    ([], "expected etcd"),
    # A launch file's YAML may give anything: one line, never a TypeError or ValueError.
    (5, "expected etcd"), ([5], "expected etcd"), ({"a": 1}, "expected etcd"),
    ("https://[::1", r"not a URL \(Invalid IPv6 URL\)"),
    ("postgres://k:pw@[::1/db", "not a URL"),
])
def test_bad_settings_get_one_line_without_the_password(value: object, why: str) -> None:
    with pytest.raises(UsageError, match=why) as e:
        settings.parse(value)  # type: ignore[arg-type]
    assert "pw" not in str(e.value).replace("pw@", "") or "***" in str(e.value)
    assert ":pw@" not in str(e.value)


def test_tls_files_are_for_external_stores_and_come_in_pairs(tmp_path: Path) -> None:
    crt = tmp_path / "c.crt"
    crt.write_text("x")
    with pytest.raises(UsageError, match="not sqlite"):
        settings.parse("sqlite", {"ca": crt})
    with pytest.raises(UsageError, match="needs its key"):
        settings.parse("https://a:2379", {"cert": crt})
    with pytest.raises(UsageError, match="no such file"):
        settings.parse("https://a:2379", {"ca": tmp_path / "missing.crt"})
    for not_a_file in (tmp_path, Path("/dev/null")):
        with pytest.raises(UsageError, match=f"{not_a_file}: not a regular file"):
            settings.parse("https://a:2379", {"ca": not_a_file})


def test_a_kine_message_over_several_lines_is_one() -> None:
    raw = (b'{"level": "fatal", "msg": "failed to connect:\\n\\t127.0.0.1:1: refused\\n'
           b'\\t127.0.0.1:1: refused"}')
    assert preflight._parse(raw) == ("fatal", "failed to connect: 127.0.0.1:1: refused "
                                               "127.0.0.1:1: refused")


def test_passwords_are_masked_and_mysql_gets_kines_form() -> None:
    store = settings.parse("mysql://kine:s3cret@10.0.0.5/kine")
    assert store.display() == "mysql://kine:***@10.0.0.5/kine"
    assert settings.kine_endpoint(store) == "mysql://kine:s3cret@tcp(10.0.0.5:3306)/kine"
    tcp = settings.parse("mysql://kine:s3cret@tcp(h:3307)/kine")
    assert settings.kine_endpoint(tcp) == "mysql://kine:s3cret@tcp(h:3307)/kine"


def test_kines_last_error_is_read_from_its_colored_log() -> None:
    log = ("\x1b[36mINFO\x1b[0m[2026-01-01T00:00:00Z] starting\n"
           "\x1b[31mERRO\x1b[0m[2026-01-01T00:00:01Z] Failed to ping database connection: "
           "password authentication failed for user \"kine\" \n")
    assert kine.last_error(log) == ('Failed to ping database connection: password '
                                    'authentication failed for user "kine"')
    assert kine.last_error("\x1b[36mINFO\x1b[0m[t] fine\n") is None


def test_a_launch_file_sets_sqlite(tmp_path: Path, paths: Paths) -> None:
    f = tmp_path / "l.yaml"
    f.write_text("version: 0.1.0\ndatastore: sqlite\n")
    first_start(paths, f)
    assert node.load(paths.state_file).datastore == "sqlite"
    # Changing it later is refused with one line; the same setting gets the usual refusal.
    f.write_text("version: 0.1.0\ndatastore: etcd\n")
    with pytest.raises(UsageError, match="datastore is sqlite already"):
        first_start(paths, f)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_etcd_that_does_not_answer_fails_the_first_start_and_writes_nothing(
        tmp_path: Path, paths: Paths) -> None:
    from microkube.pki.ca import create_ca

    (tmp_path / "ca.crt").write_bytes(create_ca("test-etcd-ca").cert_pem)
    (tmp_path / "junk.crt").write_text("not a certificate")
    f = tmp_path / "l.yaml"
    port = _closed_port()
    f.write_text(f"version: 0.1.0\ndatastore:\n  endpoint: [https://127.0.0.1:{port}]\n"
                 "  caFile: ca.crt\n")
    with pytest.raises(preflight.DatastoreUnreachable,
                       match=rf"datastore https://127.0.0.1:{port}: etcd does not answer"):
        first_start(paths, f)
    f.write_text(f"version: 0.1.0\ndatastore:\n  endpoint: [https://127.0.0.1:{port}]\n"
                 "  caFile: junk.crt\n")
    with pytest.raises(preflight.DatastoreUnreachable, match="TLS files cannot be used"):
        first_start(paths, f)
    assert not paths.data.exists()


def test_a_refused_database_is_reported_without_waiting_for_kine_to_stop(paths: Paths) -> None:
    """kine keeps retrying its first ping and does not act on SIGTERM meanwhile: the check
    reports the first error at once and ends the probe without waiting on it."""
    paths.bin_dir.mkdir(parents=True)
    fake = paths.binary("kine")
    fake.write_text("#!/bin/sh\ntrap '' TERM\n"
                    "echo '{\"severity\":\"error\",\"message\":\"Failed to ping: refused\"}' >&2\n"
                    "exec sleep 30\n")
    fake.chmod(0o755)
    store = settings.parse("postgres://k:pw@127.0.0.9:5432/kine?sslmode=disable")
    began = time.monotonic()
    with pytest.raises(preflight.DatastoreUnreachable, match="cannot connect: Failed to ping"):
        preflight.check(paths, store)
    assert time.monotonic() - began < 3.0


def test_an_external_etcd_is_kept_private_and_the_api_server_points_at_it(
        tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_text(name)
    store = settings.parse(["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
                           {"ca": tmp_path / "ca.crt", "cert": tmp_path / "client.crt",
                            "key": tmp_path / "client.key"})
    paths.ensure()
    settings.save(paths, store)
    from microkube.config import args
    from microkube.node.launch import point_api_server

    args.install_defaults(paths)
    point_api_server(paths, store)
    kept = settings.load(paths, "external-etcd")
    assert kept.endpoints == store.endpoints
    for path in (*kept.tls.values(), paths.credentials_dir / "datastore.json"):
        assert path.stat().st_mode & 0o777 == 0o600
    api = paths.args_file("kube-apiserver").read_text()
    assert "--etcd-servers=https://10.0.0.1:2379,https://10.0.0.2:2379" in api
    assert f"--etcd-keyfile={kept.tls['key']}" in api and "certs/etcd/ca.crt" not in api


def _kine_db(path: Path, rows: list[tuple[int, str, int]]) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE kine (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, "
                     "created INTEGER, deleted INTEGER, create_revision INTEGER, "
                     "prev_revision INTEGER, lease INTEGER, value BLOB, old_value BLOB)")
        conn.executemany("INSERT INTO kine (id, name, created, deleted, create_revision, "
                         "prev_revision, lease, value, old_value) VALUES (?, ?, 1, ?, 0, 0, 0, "
                         "x'00', x'00')", rows)
        conn.commit()


def test_a_sqlite_copy_counts_live_keys_and_foreign_files_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    _kine_db(db, [(1, "/a", 0), (2, "/b", 0), (3, "/b", 1), (4, "/c", 0)])
    facts = sqlite_backup.save(db, tmp_path / "copy.db")
    assert (facts["revision"], facts["total_keys"]) == (4, 2)  # /b was deleted
    foreign = tmp_path / "foreign.db"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(BackupFileError, match="not a kine database"):
        sqlite_backup.facts(foreign, "foreign.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(BackupFileError, match="not a sound SQLite database"):
        sqlite_backup.facts(junk, "junk.db")


def test_a_restored_sqlite_file_replaces_the_old_one_and_its_wal(tmp_path: Path) -> None:
    live, copy = tmp_path / "kine" / "state.db", tmp_path / "copy.db"
    live.parent.mkdir()
    _kine_db(live, [(1, "/old", 0)])
    (live.parent / "state.db-wal").write_bytes(b"stale")
    _kine_db(copy, [(1, "/new", 0)])
    sqlite_backup.install(copy, live)
    assert not (live.parent / "state.db-wal").exists()
    with closing(sqlite3.connect(live)) as conn:
        assert conn.execute("SELECT name FROM kine").fetchall() == [("/new",)]
    assert sorted(p.name for p in live.parent.iterdir()) == ["state.db"]
