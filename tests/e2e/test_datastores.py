"""A node on each datastore kine serves: SQLite, and real PostgreSQL and MariaDB servers.

Each database server is started by the test inside the node's own network namespace,
on its loopback, with a private data directory (PostgreSQL as ``nobody``: it refuses
root), and stopped after. On each: the node comes up from a launch file, a Deployment
and its Service run, a Secret is ciphertext in the SQL table, objects survive a
restart. External databases: a wrong password and a wrong host each fail ``start``
with one line naming the (masked) endpoint and leave no node behind; the corrected
file then works. SQLite: backup, delete, restore brings the objects back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from microkube.datastore import encryption
from microkube.datastore.kine import sqlite_file
from microkube.paths import Paths
from tests.testnode import SNAP_TREE, TestNode, require_built, require_root_and_node_built, wait_for
from tests.workloads import web_deployment

pytestmark = pytest.mark.e2e

PASSWORD = "s3cret-pw"
SECRET_KEY = "/registry/secrets/default/db-pass"


@dataclass
class Database:
    """A database server the test runs: how kine reaches it and how to read its kine table."""

    kind: str
    endpoint: str  # with the right password
    wrong_password: str
    wrong_host: str
    proc: subprocess.Popen[bytes]
    query: list[str]  # argv that runs one SQL statement given after it, prints rows

    def raw_value(self, node: TestNode, key: str) -> bytes:
        """The newest stored value of ``key`` in kine's table, as bytes."""
        sql = (f"SELECT {'encode(value, ' + repr('hex') + ')' if self.kind == 'postgres' else 'HEX(value)'}"
               f" FROM kine WHERE name = '{key}' ORDER BY id DESC LIMIT 1")
        out = subprocess.run(node.in_netns([*self.query, sql]), capture_output=True, text=True,
                             check=True).stdout.strip()
        return bytes.fromhex(out)


def _scratch(owner: str | None) -> Path:
    """A private directory outside pytest's 0700 tree, so a server run as ``owner`` can use it."""
    d = Path(tempfile.mkdtemp(prefix="mk-db-"))
    if owner:
        shutil.chown(d, owner)
    return d


def _wait_port(node: TestNode, port: int, proc: subprocess.Popen[bytes]) -> None:
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()"
    wait_for(f"the database on port {port}", lambda: proc.poll() is None and subprocess.run(
        node.in_netns(["python3", "-c", probe]), capture_output=True).returncode == 0,
        timeout=60, every=0.3)


@contextlib.contextmanager
def postgres(node: TestNode) -> Iterator[Database]:
    if not shutil.which("initdb") or not shutil.which("postgres"):
        pytest.fail("PostgreSQL (initdb, postgres) is not installed", pytrace=False)
    scratch = _scratch("nobody")
    data, pwfile = scratch / "data", scratch / "pw"
    pwfile.write_text(PASSWORD + "\n")
    shutil.chown(pwfile, "nobody")
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    subprocess.run([*as_nobody, "initdb", "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile),
                    "--auth-host=scram-sha-256", "--auth-local=trust"],
                   check=True, capture_output=True, cwd=scratch)
    proc = subprocess.Popen(node.in_netns([*as_nobody, "postgres", "-D", str(data), "-k", str(scratch),
                                           "-c", "listen_addresses=127.0.0.1", "-p", "5432"]),
                            stdout=subprocess.DEVNULL, stderr=(scratch / "log").open("wb"))
    try:
        _wait_port(node, 5432, proc)
        url = "postgres://postgres:{pw}@{host}:5432/kine?sslmode=disable"
        yield Database("postgres", url.format(pw=PASSWORD, host="127.0.0.1"),
                       url.format(pw="wrong", host="127.0.0.1"),
                       url.format(pw=PASSWORD, host="127.0.0.9"), proc,
                       [*as_nobody, "psql", "-h", str(scratch), "-U", "postgres", "-d", "kine",
                        "-Atc"])
    finally:
        proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
        proc.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def mariadb(node: TestNode) -> Iterator[Database]:
    if not shutil.which("mariadbd", path="/usr/sbin:/usr/bin") or not shutil.which("mariadb"):
        pytest.fail("MariaDB is not installed (apt-get install mariadb-server; make deps)",
                    pytrace=False)
    scratch = _scratch(None)
    data, sock = scratch / "data", scratch / "sock"
    subprocess.run(["mariadb-install-db", "--user=root", f"--datadir={data}",
                    "--auth-root-authentication-method=socket", "--skip-test-db"],
                   check=True, capture_output=True)
    proc = subprocess.Popen(node.in_netns([
        "/usr/sbin/mariadbd", "--no-defaults", "--user=root", f"--datadir={data}",
        f"--socket={sock}", "--bind-address=127.0.0.1", "--port=3306",
        f"--pid-file={scratch}/pid", "--skip-name-resolve"]),
        stdout=subprocess.DEVNULL, stderr=(scratch / "log").open("wb"))
    try:
        _wait_port(node, 3306, proc)
        client = ["mariadb", "--no-defaults", f"--socket={sock}", "-uroot"]
        subprocess.run(node.in_netns([*client, "-e",
                                      f"CREATE USER 'kine'@'%' IDENTIFIED BY '{PASSWORD}'; "
                                      "GRANT ALL ON *.* TO 'kine'@'%';"]),
                       check=True, capture_output=True)
        url = "mysql://kine:{pw}@{host}:3306/kine"
        yield Database("mysql", url.format(pw=PASSWORD, host="127.0.0.1"),
                       url.format(pw="wrong", host="127.0.0.1"),
                       url.format(pw=PASSWORD, host="127.0.0.9"), proc,
                       [*client, "-N", "-B", "kine", "-e"])
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(scratch, ignore_errors=True)


def _launch(tmp: Path, name: str, datastore: str) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"version": "0.1.0", "datastore": datastore}))
    return path


def _refused(node: TestNode, launch: Path, endpoint_shown: str) -> str:
    """Start with ``launch``, which must fail: one line naming the masked endpoint, no node."""
    proc = node.run("start", "--config", str(launch), check=False, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert endpoint_shown in lines[0] and PASSWORD not in lines[0] and "wrong" not in lines[0]
    assert not (node.root / "data" / "var" / "node.yaml").exists()
    assert not (node.root / "data" / "credentials" / "datastore.json").exists()
    return lines[0]


def _objects(node: TestNode) -> set[str]:
    found = node.kubectl("get", "deployment,service,configmap,secret", "-o", "name").split()
    return {o for o in found if o.rsplit("/", 1)[1] in ("web", "notes", "db-pass")}


EXPECTED = {"deployment.apps/web", "service/web", "configmap/notes", "secret/db-pass"}


def _serves(node: TestNode) -> bool:
    ip = node.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
    out = node.run("kubectl", "exec", "deploy/web", "--", "wget", "-qO-", f"http://{ip}/",
                   check=False, timeout=30).stdout
    return "hello from kine" in out


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
def test_a_node_on_the_datastore(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    require_root_and_node_built()
    require_built(SNAP_TREE / "bin" / "kine")
    started = time.monotonic()
    tmp = Path(tmp_path_factory.mktemp(f"ds-{kind}"))
    ip = {"sqlite": "10.213.31.2", "postgres": "10.213.32.2", "mysql": "10.213.33.2"}[kind]
    node = TestNode(name=f"mk-{kind}", root=tmp / "root", ip=ip, netns=f"mk-ds-{kind}-{os.getpid()}")
    node.create_netns()
    try:
        with contextlib.ExitStack() as stack:
            db = None
            if kind != "sqlite":
                db = stack.enter_context(postgres(node) if kind == "postgres" else mariadb(node))
                stack.callback(node.stop)  # the node lets go of the database before it stops
                shown = db.endpoint.replace(PASSWORD, "***")
                line = _refused(node, _launch(tmp, "bad-pw", db.wrong_password), shown)
                assert "password" in line.lower() or "denied" in line.lower(), line
                line = _refused(node, _launch(tmp, "bad-host", db.wrong_host),
                                shown.replace("127.0.0.1", "127.0.0.9"))
                assert "refused" in line or "connect" in line, line
            good = _launch(tmp, "good", db.endpoint if db else "sqlite")
            node.run("start", "--config", str(good), "--wait-ready", "--timeout", "240",
                     timeout=300)
            st = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
            assert st["datastore"]["kind"] == kind
            assert PASSWORD not in yaml.safe_dump(st)
            assert "etcd" not in st["daemons"] and st["daemons"]["kine"] == "ready"
            creds = node.root / "data" / "credentials" / "datastore.json"
            if db:
                assert creds.stat().st_mode & 0o777 == 0o600
            # Changing the datastore of a node that has one is refused with one line.
            other = _launch(tmp, "other", "etcd" if db else "mysql://u:p@127.0.0.1:3306/x")
            again = node.run("start", "--config", str(other), check=False)
            assert again.returncode == 2 and "changing a node's datastore" in again.stderr
            assert len(again.stderr.strip().splitlines()) == 1

            node.apply(web_deployment("web", "hello from kine"))
            node.kubectl("create", "configmap", "notes", "--from-literal=a=1")
            node.kubectl("create", "secret", "generic", "db-pass",
                         "--from-literal=password=hunter2-plain")
            node.wait_for("web to serve", lambda: _serves(node), timeout=120)

            # Secrets stay encrypted at rest on kine: the SQL table holds ciphertext.
            paths = Paths.from_env(node.env)
            if db:
                raw = db.raw_value(node, SECRET_KEY)
            else:
                with contextlib.closing(sqlite3.connect(sqlite_file(paths))) as conn:
                    raw = conn.execute("SELECT value FROM kine WHERE name = ? ORDER BY id DESC "
                                       "LIMIT 1", (SECRET_KEY,)).fetchone()[0]
            key = encryption.read_keys(paths.encryption_config)[0].name
            assert raw.startswith(encryption.ciphertext_prefix(key)), raw[:40]
            assert b"hunter2-plain" not in raw

            # The objects survive a restart.
            node.stop()
            node.start()
            assert _objects(node) == EXPECTED
            node.wait_for("web to serve after the restart", lambda: _serves(node), timeout=120)
            [kine] = [p for p in node.processes() if p.name() == "kine"]
            print(f"{kind}: kine PSS {kine.memory_full_info().pss / 2**20:.1f} MiB")

            if kind == "sqlite":
                backup = tmp / "backup.tar.gz"
                node.run("dbctl", "backup", "-o", str(backup))
                node.kubectl("delete", "deployment,service", "web")
                node.kubectl("delete", "configmap", "notes")
                assert _objects(node) == {"secret/db-pass"}
                node.stop()
                corrupt = tmp / "corrupt.tar.gz"
                corrupt.write_bytes(backup.read_bytes()[:-300])
                db_before = sqlite_file(paths).read_bytes()
                bad = node.run("dbctl", "restore", str(corrupt), check=False)
                assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
                assert sqlite_file(paths).read_bytes() == db_before  # untouched
                node.run("dbctl", "restore", str(backup))
                node.start()
                assert _objects(node) == EXPECTED
                node.wait_for("web to serve after the restore", lambda: _serves(node),
                              timeout=120)
    finally:
        node.destroy()
    print(f"{kind}: {time.monotonic() - started:.0f} s")
