"""Real PostgreSQL and MariaDB servers for the datastore tests, from the distribution's packages.

A server runs in a network namespace the test made (a node's own, or a host on a
test LAN), listens on one address there, keeps its data in a private scratch
directory (PostgreSQL as ``nobody``: it refuses root) and is stopped, by pid,
when the with-block ends. :meth:`Database.stop` and :meth:`Database.start` take
it away and bring it back while a node uses it.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import netns
from tests.testnode import wait_for

PASSWORD = "s3cret-pw"
WRONG_HOST = "127.0.0.9"  # nothing listens there in any test namespace
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@dataclass
class Database:
    """A database server the test runs: how kine reaches it and how to read its kine table."""

    kind: str
    netns: str
    host: str  # the address it listens on
    port: int
    argv: list[str]  # the server's command line (in the namespace)
    scratch: Path
    query: list[str]  # argv that runs one SQL statement given after it, prints rows
    ca_file: Path | None = None  # the CA of the server's TLS certificate, when it has one
    proc: subprocess.Popen[bytes] | None = None

    def url(self, password: str = PASSWORD, host: str | None = None) -> str:
        """kine's endpoint for this server (``password`` and ``host`` to get one wrong); with
        TLS no sslmode is named: kine makes it verify-full once it is given the CA file."""
        if self.kind == "postgres":
            return f"postgres://postgres:{password}@{host or self.host}:{self.port}/kine" \
                   + ("" if self.ca_file else "?sslmode=disable")
        return f"mysql://kine:{password}@{host or self.host}:{self.port}/kine"

    @property
    def endpoint(self) -> str:
        return self.url()

    @property
    def wrong_password(self) -> str:
        return self.url(password="wrong")

    @property
    def wrong_host(self) -> str:
        return self.url(host=WRONG_HOST)

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        log = (self.scratch / "log").open("ab")
        self.proc = subprocess.Popen(netns.in_netns(self.netns, self.argv),
                                     stdout=subprocess.DEVNULL, stderr=log)
        log.close()
        proc = self.proc
        probe = f"import socket; socket.create_connection(({self.host!r}, {self.port}), 1).close()"
        wait_for(f"the database on {self.host}:{self.port}", lambda: proc.poll() is None
                 and subprocess.run(netns.in_netns(self.netns, [sys.executable, "-c", probe]),
                                    capture_output=True).returncode == 0, timeout=60, every=0.3)

    def stop(self) -> None:
        """Stop the server (PostgreSQL's fast shutdown; MariaDB's on SIGTERM), by its pid."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT if self.kind == "postgres" else signal.SIGTERM)
        self.proc.wait(timeout=60)

    def sql(self, statement: str) -> str:
        """Rows the statement printed, over the server's local socket."""
        return subprocess.run(netns.in_netns(self.netns, [*self.query, statement]),
                              capture_output=True, text=True, check=True).stdout.strip()

    def raw_value(self, key: str) -> bytes:
        """The newest stored value of ``key`` in kine's table, as bytes."""
        value = "encode(value, 'hex')" if self.kind == "postgres" else "HEX(value)"
        return bytes.fromhex(self.sql(f"SELECT {value} FROM kine WHERE name = '{key}' "
                                      "ORDER BY id DESC LIMIT 1"))


def _scratch(owner: str | None) -> Path:
    """A private directory outside pytest's 0700 tree, so a server run as ``owner`` can use it."""
    d = Path(tempfile.mkdtemp(prefix="mk-db-"))
    if owner:
        shutil.chown(d, owner)
    return d


@contextlib.contextmanager
def _running(db: Database) -> Iterator[Database]:
    try:
        db.start()
        yield db
    finally:
        db.stop()
        shutil.rmtree(db.scratch, ignore_errors=True)


def _server_tls(scratch: Path, host: str) -> tuple[Path, Path, Path]:
    """A test CA and a serving certificate for the IP address ``host`` that it signed:
    (CA file, certificate file, key file), the key 0600 and owned by ``nobody``."""
    import ipaddress

    from microkube.pki.ca import create_ca
    from microkube.pki.certs import LeafSpec, Usage, cert_pem
    from microkube.pki.keys import new_key, private_pem

    ca = create_ca("microkube-test-database-ca")
    key = new_key()
    cert = ca.issue(LeafSpec(host, Usage.SERVER, ip_addresses=(ipaddress.ip_address(host),)),
                    key.public_key())
    files = (scratch / "ca.crt", scratch / "server.crt", scratch / "server.key")
    for path, data in zip(files, (ca.cert_pem, cert_pem(cert), private_pem(key)), strict=True):
        path.write_bytes(data)
        shutil.chown(path, "nobody")
    files[2].chmod(0o600)
    return files


@contextlib.contextmanager
def postgres(namespace: str, host: str = "127.0.0.1", tls: bool = False) -> Iterator[Database]:
    """PostgreSQL in ``namespace`` on ``host``:5432, user postgres with PASSWORD (any client
    address may log in with it: nodes on a LAN reach it). With ``tls``, clients other than
    local ones must use TLS, and the server's certificate is signed by a test CA
    (:attr:`Database.ca_file`)."""
    if not shutil.which("initdb") or not shutil.which("postgres"):
        pytest.fail("PostgreSQL (initdb, postgres) is not installed", pytrace=False)
    scratch = _scratch("nobody")
    data, pwfile = scratch / "data", scratch / "pw"
    pwfile.write_text(PASSWORD + "\n")
    shutil.chown(pwfile, "nobody")
    subprocess.run([*AS_NOBODY, "initdb", "-D", str(data), "-U", "postgres", "--pwfile",
                    str(pwfile), "--auth-host=scram-sha-256", "--auth-local=trust"],
                   check=True, capture_output=True, cwd=scratch)
    argv = [*AS_NOBODY, "postgres", "-D", str(data), "-k", str(scratch),
            "-c", f"listen_addresses={host}", "-p", "5432"]
    ca_file = None
    if tls:
        ca_file, cert, key = _server_tls(scratch, host)
        argv += ["-c", "ssl=on", "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}"]
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write(f"{'hostssl' if tls else 'host'} all all 0.0.0.0/0 scram-sha-256\n")
    query = [*AS_NOBODY, "psql", "-h", str(scratch), "-U", "postgres", "-d", "kine", "-Atc"]
    with _running(Database("postgres", namespace, host, 5432, argv, scratch, query,
                           ca_file)) as db:
        yield db


@contextlib.contextmanager
def mariadb(namespace: str, host: str = "127.0.0.1") -> Iterator[Database]:
    """MariaDB in ``namespace`` on ``host``:3306, user kine with PASSWORD."""
    if not shutil.which("mariadbd", path="/usr/sbin:/usr/bin") or not shutil.which("mariadb"):
        pytest.fail("MariaDB is not installed (apt-get install mariadb-server; make deps)",
                    pytrace=False)
    scratch = _scratch(None)
    data, sock = scratch / "data", scratch / "sock"
    subprocess.run(["mariadb-install-db", "--user=root", f"--datadir={data}",
                    "--auth-root-authentication-method=socket", "--skip-test-db"],
                   check=True, capture_output=True)
    argv = ["/usr/sbin/mariadbd", "--no-defaults", "--user=root", f"--datadir={data}",
            f"--socket={sock}", f"--bind-address={host}", "--port=3306",
            f"--pid-file={scratch}/pid", "--skip-name-resolve"]
    client = ["mariadb", "--no-defaults", f"--socket={sock}", "-uroot"]
    db = Database("mysql", namespace, host, 3306, argv, scratch, [*client, "-N", "-B", "kine", "-e"])
    with _running(db):
        subprocess.run(netns.in_netns(namespace, [
            *client, "-e", f"CREATE USER 'kine'@'%' IDENTIFIED BY '{PASSWORD}'; "
                           "GRANT ALL ON *.* TO 'kine'@'%';"]), check=True, capture_output=True)
        yield db
